"""ASTRA engine: FLUX.1-dev DiT with EURoPE positions, the DSM adapter and LoRA.

Heavy classes are exported lazily so that ``import engine.request`` (used by the torch-free UI)
never imports torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from engine.errors import EngineError, GenerationCancelled
from engine.request import EngineInfo, GenerationRequest, GenerationResult

_LAZY_EXPORTS = {
    "AstraPipeline": "engine.pipeline",
    "AstraPipelineOutput": "engine.pipeline",
    "EngineConfig": "engine.service",
    "EngineService": "engine.service",
}

__all__ = ["AstraPipeline", "AstraPipelineOutput", "EngineConfig", "EngineError", "EngineInfo", "EngineService",
           "GenerationCancelled", "GenerationRequest", "GenerationResult"]


def __getattr__(name: str) -> Any:
    module = _LAZY_EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
