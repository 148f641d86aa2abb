"""Engine modes: feed the DiT only the token kinds its loaded weights were trained on.

No ASTRA weights are public (DESIGN section 5, "Public weights"), so what a pipeline may do
depends on what was loaded:

=========  ===========================================  ===================================
mode       weights                                      image stream / pose path
=========  ===========================================  ===================================
astra      FLUX.1-dev + an ASTRA adapter (LoRA, DSM)    ``[latent | refs | pose]``, EURoPE
public     FLUX.1-dev + UNO's LoRA (+ a pose ControlNet) ``[latent | refs]``, UnoPE ids;
                                                        pose through the ControlNet
base       FLUX.1-dev (+ a pose ControlNet)             ``[latent]``; pose through the
                                                        ControlNet
=========  ===========================================  ===================================

The paper (section 3.2, eq. 4-5) has one stream ``[text | refs | pose | z_t]``; ``public`` and
``base`` are our deviations, because stock FLUX and UNO never saw pose tokens (and stock FLUX
never saw reference tokens): concatenating them gives artefacts, not subjects in poses. This
module is torch-free so the app can reason about modes before anything loads.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.errors import EngineError

ASTRA, PUBLIC, BASE = "astra", "public", "base"
MODES = (ASTRA, PUBLIC, BASE)
LATENT, REFERENCE, POSE = "latent", "reference", "pose"


@dataclass(frozen=True)
class ModeSpec:
    """What one mode feeds the DiT.

    Args:
        name: ``astra``, ``public`` or ``base``.
        stream: token kinds the image stream may hold, in order.
        dsm: whether DSM offsets modulate the text (only an ASTRA adapter has a DSM).
        summary: one line for status lines and logs.
    """

    name: str
    stream: tuple[str, ...]
    dsm: bool
    summary: str

    @property
    def takes_subjects(self) -> bool:
        return REFERENCE in self.stream

    @property
    def pose_tokens(self) -> bool:
        return POSE in self.stream


SPECS = {
    ASTRA: ModeSpec(ASTRA, (LATENT, REFERENCE, POSE), dsm=True,
                    summary="ASTRA adapter: reference and pose tokens (EURoPE), DSM, LoRA"),
    PUBLIC: ModeSpec(PUBLIC, (LATENT, REFERENCE), dsm=False,
                     summary="public weights: UNO LoRA for the subjects (UnoPE), pose through a ControlNet"),
    BASE: ModeSpec(BASE, (LATENT,), dsm=False,
                   summary="FLUX.1-dev alone: text, and the pose through a ControlNet when one is loaded"),
}


class WeightsUnavailable(EngineError):
    """An optional part of the public mode (UNO's LoRA, the pose ControlNet) could not be loaded.

    Raised before the base model loads, so a caller (``app.py``) can fall back to a smaller mode
    and say why. ``part`` names what was missing.
    """

    def __init__(self, part: str, message: str) -> None:
        super().__init__(message)
        self.part = part


def spec(mode: str) -> ModeSpec:
    """The :class:`ModeSpec` of ``mode``; an unknown name raises :class:`EngineError`."""
    if mode not in SPECS:
        raise EngineError(f"Unknown engine mode {mode!r}; use one of {', '.join(MODES)}.")
    return SPECS[mode]


def mode_for(*, adapter: bool, uno_lora: bool) -> str:
    """The mode the loaded weights allow: an ASTRA adapter wins, then UNO's LoRA, else base."""
    if adapter and uno_lora:
        raise EngineError("Load either an ASTRA adapter or UNO's LoRA, not both: both adapt the same FLUX layers "
                          "and were never trained together.")
    return ASTRA if adapter else PUBLIC if uno_lora else BASE


def stream_kinds(mode: str, *, num_subjects: int, has_pose: bool) -> tuple[str, ...]:
    """The token kinds a generation in ``mode`` puts in the image stream, in order."""
    allowed = spec(mode).stream
    kinds = [LATENT]
    if num_subjects and REFERENCE in allowed:
        kinds.append(REFERENCE)
    if has_pose and POSE in allowed:
        kinds.append(POSE)
    return tuple(kinds)


def check_stream(mode: str, *, num_references: int, has_pose_tokens: bool) -> None:
    """Raise ``RuntimeError`` if a built stream holds a token kind ``mode`` was not trained on.

    A programming error, not a user's: ``check_inputs`` refuses such requests first.
    """
    allowed = spec(mode).stream
    if num_references and REFERENCE not in allowed:
        raise RuntimeError(f"{mode} mode built {num_references} reference token block(s); its weights never saw any.")
    if has_pose_tokens and POSE not in allowed:
        raise RuntimeError(f"{mode} mode built pose tokens; its weights never saw any (the pose goes to the "
                           "ControlNet).")


def check_mode_inputs(mode: str, *, num_subjects: int, has_pose: bool, has_controlnet: bool) -> None:
    """Refuse, with what to load, subjects or a pose that the loaded weights cannot use."""
    if num_subjects and not spec(mode).takes_subjects:
        raise EngineError(f"This engine runs FLUX.1-dev without a subject adapter, so it cannot use the "
                          f"{num_subjects} subject image(s); remove them, or restart with UNO's LoRA "
                          "(--uno-lora bytedance-research/UNO) or an ASTRA adapter (--adapter).")
    if has_pose and not spec(mode).pose_tokens and not has_controlnet:
        raise EngineError("This engine has no pose ControlNet, so the pose cannot reach the model; clear the pose, "
                          "or restart with --controlnet Shakker-Labs/FLUX.1-dev-ControlNet-Union-Pro-2.0.")


def describe(mode: str, *, adapter: str | None = None, uno_lora: str | None = None,
             controlnet: str | None = None) -> str:
    """One sentence naming the mode and the exact checkpoints behind it (for logs and the status line)."""
    parts = [f"{mode} mode ({spec(mode).summary})"]
    if adapter:
        parts.append(f"adapter {adapter}")
    if uno_lora:
        parts.append(f"UNO LoRA {uno_lora}")
    if controlnet:
        parts.append(f"pose ControlNet {controlnet}")
    return "; ".join(parts)


def uses_hands(mode: str | None, *, has_controlnet: bool) -> bool:
    """Whether generations in ``mode`` see the pose's hands: only a pose ControlNet's map draws
    them (``engine.controlnet.TAKES_HANDS``); ASTRA's pose tokens are body-only, and without a
    ControlNet the public and base modes take no pose at all."""
    return mode in SPECS and has_controlnet and not spec(mode).pose_tokens
