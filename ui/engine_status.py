"""The engine status line: what generates the images here, and how to get real weights."""

from __future__ import annotations

from .config import StudioConfig


def engine_status(info, config: StudioConfig) -> str:
    """Markdown for ``EngineInfo``: real FLUX on which GPU, the tiny engine, or none and why."""
    if info.kind == "real":
        adapter = f" + {info.adapter}" if info.adapter else " (no ASTRA adapter: plain FLUX)"
        where = "ZeroGPU" if config.zero_gpu else info.device
        text = f"**Real engine** — `{info.base}`{adapter} on **{where}**, {info.dtype}."
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
