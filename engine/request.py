"""Plain data exchanged between the studio and the engine (torch-free).

The UI builds a :class:`GenerationRequest`, the resident engine service answers with a
:class:`GenerationResult`; :class:`EngineInfo` says which engine is loaded so the UI can be
honest about it (a tiny engine's images are noise).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.errors import EngineError, GenerationCancelled

__all__ = [
    "GenerationRequest",
    "EngineInfo",
    "GenerationResult",
    "EngineError",
    "GenerationCancelled",
]


@dataclass
class GenerationRequest:
    """One generation, as the creator set it up.

    Args:
        prompt: the scene description.
        subjects: reference images (PIL), 0 to 4.
        subject_names: a short name per subject, used to bind its span in the prompt.
        pose: OpenPose JSON dict (persons may carry a ``"subject"`` index) or None.
        height, width: output size in pixels, multiples of 16.
        num_inference_steps: denoising steps.
        guidance_scale: FLUX.1-dev distilled guidance (not classifier-free guidance).
        seed: random seed for the initial noise.
        binding_strength: subject-to-skeleton attention binding; 0 turns it off.
        controlnet_conditioning_scale, control_guidance_start, control_guidance_end: the pose
            ControlNet's strength and active share of the steps (engines with a ControlNet);
            None takes the model card's values.
    """

    prompt: str
    subjects: list[Any] = field(default_factory=list)
    subject_names: list[str] = field(default_factory=list)
    pose: dict | None = None
    height: int = 1024
    width: int = 1024
    num_inference_steps: int = 28
    guidance_scale: float = 3.5
    seed: int = 0
    binding_strength: float = 1.0
    controlnet_conditioning_scale: float | None = None
    control_guidance_start: float | None = None
    control_guidance_end: float | None = None

    def control_kwargs(self) -> dict[str, float]:
        """The ControlNet settings that were set, as ``AstraPipeline.__call__`` keywords."""
        names = ("controlnet_conditioning_scale", "control_guidance_start", "control_guidance_end")
        return {name: getattr(self, name) for name in names if getattr(self, name) is not None}


@dataclass
class EngineInfo:
    """What engine is loaded.

    Args:
        kind: ``"real"`` (FLUX weights), ``"tiny"`` (random small weights: images are noise)
            or ``"none"`` (no engine; generation raises :class:`EngineError`).
        device: e.g. ``"cuda:0"`` or ``"cpu"``.
        dtype: e.g. ``"bfloat16"``.
        base: base model hub id or folder.
        adapter: ASTRA adapter hub id or folder, if any.
        message: what a user should know, e.g. ``"tiny engine: images are noise"``.
        mode: ``"astra"``, ``"public"`` or ``"base"`` (``engine.modes``), None without an engine.
        uno_lora: UNO LoRA checkpoint (``public`` mode), if any.
        controlnet: pose ControlNet checkpoint, if any (``"tiny"`` for the tiny engine's).
        control_defaults: the ControlNet's (scale, start, end) defaults from its model card.
    """

    kind: str
    device: str
    dtype: str
    base: str
    adapter: str | None
    message: str
    mode: str | None = None
    uno_lora: str | None = None
    controlnet: str | None = None
    control_defaults: tuple[float, float, float] | None = None


@dataclass
class GenerationResult:
    """A finished generation: the image (PIL), the seed used, wall time and the engine info."""

    image: Any
    seed: int
    elapsed_s: float
    info: EngineInfo
