"""The engine status line: what generates the images here, and how to get real weights."""

from __future__ import annotations

from engine.modes import uses_hands

from .config import StudioConfig


def engine_status(info, config: StudioConfig) -> str:
    """Markdown for ``EngineInfo``: real FLUX on which GPU, the tiny engine, or none and why."""
    if info.kind == "real":
        where = "ZeroGPU" if config.zero_gpu else info.device
        text = f"**Real engine, {_mode_line(info)} on **{where}**, {info.dtype}."
    elif info.kind == "tiny":
        text = ("**Tiny engine** — untrained random weights: images are noise, for "
                "development and tests. " + config.weights_help)
    else:
        text = ("**No engine** — retrieval and editing work; Generate is off. "
                + config.weights_help)
    # The tiny engine's message repeats the line above; a real or missing engine's says more.
    if info.message and info.kind != "tiny":
        text += f"  \n<small>{info.message}</small>"
    return text


# What each engine mode (engine.modes) can use, for the status line.
_MODES = {
    "astra": "ASTRA adapter: subjects and pose as tokens",
    "public": "public weights: subjects through UNO's LoRA, pose through a ControlNet",
    "base": "FLUX.1-dev alone: no subject images",
}


def _mode_line(info) -> str:
    """``public mode (what it can use): checkpoint + checkpoint``, for the real engine's line."""
    mode = getattr(info, "mode", None)
    parts = [f"`{info.base}`"]
    if info.adapter:
        parts.append(f"adapter `{info.adapter}`")
    if getattr(info, "uno_lora", None):
        parts.append(f"UNO LoRA `{info.uno_lora}`")
    if getattr(info, "controlnet", None):
        parts.append(f"pose ControlNet `{info.controlnet}`")
    what = _MODES.get(mode, "weights of unknown kind")
    if mode == "base" and not getattr(info, "controlnet", None):
        what += ", text only (no pose ControlNet)"
    licence = " (non-commercial weights)" if mode in ("public", "base") else ""
    return f"{mode or 'unknown'} mode** ({what}): " + " + ".join(parts) + licence + ","


def hands_note(info) -> str:
    """One line under the editor: whether the loaded engine uses the pose's hands (only a pose
    ControlNet does, ``engine.modes.uses_hands``), so nobody edits fingers for nothing unawares."""
    mode, controlnet = getattr(info, "mode", None), getattr(info, "controlnet", None)
    if uses_hands(mode, has_controlnet=bool(controlnet)):
        return "Hands are used: the pose ControlNet draws them into its pose map."
    why = ("ASTRA's pose tokens are body-only" if mode == "astra"
           else "no pose ControlNet is loaded" if mode else "no engine is loaded")
    return (f"Hands are used by the ControlNet pose mode; this engine ignores them ({why}). "
            "They stay in the pose JSON you export.")
