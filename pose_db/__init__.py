"""pose_db: the pose-scene model and the RAG-Pose knowledge database of ASTRA Studio.

Imports nothing of ours and no gradio or torch: the engine, the studio and the tools all build on it.
"""
