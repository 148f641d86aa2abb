"""The Gradio studio. Built from services handed in (engine, retriever); never imports torch.

Exports are lazy so that the pure-PIL helpers (``ui.images``, ``ui.recipe``) import without
loading Gradio.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY_EXPORTS = {
    "StudioConfig": "ui.config",
    "build_studio": "ui.studio",
    "launch_options": "ui.theme",
}

__all__ = sorted(_LAZY_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _LAZY_EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ui' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
