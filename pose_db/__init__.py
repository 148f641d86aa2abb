"""pose_db: the pose-scene model and the RAG-Pose knowledge database of ASTRA Studio.

Sub-packages in dependency order, each importing only those before it:
``scene`` → ``prompt`` → ``library`` → ``index`` → ``retrieval``. The modules at this level are
the command-line entry points (``python -m pose_db.query`` …), kept where users' scripts call them.
Imports nothing else of ours and no gradio; torch only lazily, where a model needs it.
"""
