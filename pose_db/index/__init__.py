"""The RAG-Pose vector index (paper section 3.1.3): MiniLM embeddings of library prompts in Chroma.

``minilm`` (a light runner for the packaged model) → ``embedder`` → ``store`` (`PoseIndex`:
one cosine collection per people count, embedded or on a Chroma server) → ``swap`` (build into
a new folder, swap in when complete) → ``build`` (library → index, `ensure_index` for a first
start) → ``grow`` (imported entries into an existing index); ``stats`` reports what an index holds.
"""
