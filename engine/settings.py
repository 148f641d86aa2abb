"""Engine-wide defaults and the per-adapter ASTRA settings.

Kept apart from ``engine.pipeline`` so that ``engine.checkpoint`` (which stores the settings
with an adapter) and the pipeline (which loads adapters) do not import each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.binding import REGION_DILATE
from engine.conditioning import ReferenceSizes

FLUX_DEV = "black-forest-labs/FLUX.1-dev"
UNO_REPO, UNO_LORA_FILE = "bytedance-research/UNO", "dit_lora.safetensors"
SCHEDULES = ("flux", "uno")
CLIP_VISION = "openai/clip-vit-large-patch14"


@dataclass(frozen=True)
class AstraSettings:
    """Per-engine ASTRA settings (stored with an adapter).

    Args:
        references: UNO-style reference long sides (one / several references).
        pose_scale: 1 for a full-resolution pose map, 2 for half-resolution compact tokens.
        max_sequence_length: T5 tokens (FLUX.1-dev: 512).
        region_dilate: how far a subject's region grows around its skeleton's box (share of its side).
        schedule: ``"flux"`` (FLUX's resolution shift from the latent's token count) or ``"uno"``
            (UNO's sampler: the shift from ``(W/8 * H/8) / 256``, a 64x smaller count, so a milder
            shift; ``uno/flux/pipeline.py`` ``get_schedule``).
    """

    references: ReferenceSizes = field(default_factory=ReferenceSizes)
    pose_scale: int = 1
    max_sequence_length: int = 512
    region_dilate: float = REGION_DILATE
    schedule: str = "flux"
