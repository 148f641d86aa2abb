"""Every ``ASTRA_*`` environment variable, read here and nowhere else (README "Environment").

Read at call time, not import time, so a test or a process that sets a variable is seen; an
unset or empty variable is None. Each default stays with the code that owns it.
"""

from __future__ import annotations

import os

VARIABLES = {
    "ASTRA_POSE_INDEX": "folder of the embedded pose index (default ~/.cache/astra-studio/pose_index)",
    "ASTRA_CHROMA_URL": "a Chroma server holding the pose index instead of a folder (http://HOST:PORT)",
    "ASTRA_CHROMA_COLLECTION": "collection name prefix of the pose index (default astra_poses)",
    "ASTRA_NORMALIZER": 'RAG-Pose prompt normaliser: "rules" (default) or an instruct LLM hub id / folder',
    "ASTRA_EMBED_MODEL": "MiniLM model folder or hub id (default: the packaged all-MiniLM-L6-v2)",
    "ASTRA_EMBED_BACKEND": '"lean" (default when possible) or "sentence-transformers"',
    "ASTRA_BUILD_WORKERS": "processes generating the library during an index build (default cores - 1)",
    "ASTRA_ANNOTATORS": "folder of controlnet_aux's OpenPose/DWPose weights (default ~/.cache/astra-studio/annotators)",
    "ASTRA_APP_ARGS": "options for app.py read before the command line (a Space has no command line)",
}


def get(name: str) -> str | None:
    """The value of one of `VARIABLES`, or None when unset or empty."""
    if name not in VARIABLES:
        raise KeyError(f"{name} is not one of ASTRA Studio's environment variables: {sorted(VARIABLES)}")
    return os.environ.get(name) or None
