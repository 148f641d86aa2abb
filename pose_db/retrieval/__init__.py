"""RAG-Pose at inference (paper section 3.1.3): normalise, embed, search, threshold, diversify.

``retriever`` (`PoseRetriever` over any index with `search`) → ``query`` (the CLI evaluations call).
Depends on the index's interface only, never on library synthesis.
"""
