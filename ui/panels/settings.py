"""Generation settings: size and aspect presets, steps, guidance, seed, binding strength, and the
pose ControlNet's scale and guidance window (shown only when the engine loaded a ControlNet).

Its events (preset ↔ sliders, New seed) are its own and wired here."""

from __future__ import annotations

import random
from dataclasses import dataclass

import gradio as gr

from .. import inputs
from ..config import Defaults, Presets
from ..generation import MAX_SEED

CUSTOM = "Custom"


@dataclass
class SettingsPanel:
    preset: gr.Dropdown
    width: gr.Slider
    height: gr.Slider
    steps: gr.Slider
    guidance: gr.Slider
    seed: gr.Number
    randomise: gr.Checkbox
    dice: gr.Button
    binding: gr.Slider
    control_scale: gr.Slider
    control_start: gr.Slider
    control_end: gr.Slider
    has_control: bool = False  # a ControlNet is loaded: the three sliders above are shown and sent
    lock: gr.Checkbox | None = None  # the skeleton canvas takes the output size (ui.canvas_fit)
    variations: gr.Slider | None = None  # images per Generate, consecutive seeds

    @property
    def control(self) -> tuple[gr.Slider, gr.Slider, gr.Slider]:
        return self.control_scale, self.control_start, self.control_end


def build_settings_panel(presets: Presets, defaults: Defaults,
                         control: tuple[float, float, float] | None = None) -> SettingsPanel:
    """The panel; `control` is the loaded ControlNet's (scale, start, end) card defaults, or None."""
    limits = presets.limits
    start = presets.size(defaults.size)
    labels = [p.label for p in presets.sizes]
    preset = gr.Dropdown(labels + [CUSTOM], value=start.label, label="Size and aspect",
                         elem_id="size-preset")
    with gr.Row():
        width = inputs.Slider(limits.min_side, limits.max_side, value=start.width, step=16,
                          label="Width", elem_id="width", min_width=120)
        height = inputs.Slider(limits.min_side, limits.max_side, value=start.height, step=16,
                           label="Height", elem_id="height", min_width=120)
    lock = gr.Checkbox(value=True, label="Lock the canvas to the output size",
                       info="The skeletons are scaled evenly and centred to this shape, "
                            "never squeezed", elem_id="lock-aspect")
    with gr.Row():
        steps = inputs.Slider(1, limits.max_steps, value=defaults.steps, step=1, label="Steps",
                          elem_id="steps", min_width=120)
        guidance = inputs.Slider(0.0, limits.max_guidance, value=defaults.guidance, step=0.1,
                             label="Guidance", elem_id="guidance", min_width=120)
    binding = inputs.Slider(0.0, limits.max_binding_strength, value=defaults.binding_strength,
                        step=0.05, label="Binding strength",
                        info="How firmly each subject holds to its skeleton (0 = ignore poses)",
                        elem_id="binding")
    with gr.Row(equal_height=True, elem_classes=["seed-row"]):
        seed = inputs.Number(value=0, label="Seed", precision=0, minimum=0, maximum=MAX_SEED,
                         elem_id="seed", scale=3, min_width=110)
        dice = gr.Button("New seed", size="sm", scale=0, min_width=84, elem_id="dice")
        randomise = gr.Checkbox(value=True, label="Randomise", elem_id="randomise", scale=2,
                                min_width=100)
    variations = inputs.Slider(1, limits.max_variations, value=1, step=1, label="Variations",
                           info="Images per Generate, with seeds seed, seed + 1, … (one at a time "
                                "on the GPU)", elem_id="variations")
    scale, start, end = control or (0.0, 0.0, 1.0)
    with gr.Accordion("Pose ControlNet", open=False, visible=control is not None, elem_id="controlnet"):
        control_scale = inputs.Slider(0.0, 2.0, value=scale, step=0.05, label="ControlNet strength",
                                  info="How strictly the image follows the skeletons (model card default)",
                                  elem_id="control-scale")
        with gr.Row():
            control_start = inputs.Slider(0.0, 1.0, value=start, step=0.05, label="From step (fraction)",
                                      elem_id="control-start", min_width=120)
            control_end = inputs.Slider(0.0, 1.0, value=end, step=0.05, label="Until step (fraction)",
                                    elem_id="control-end", min_width=120)
    panel = SettingsPanel(preset, width, height, steps, guidance, seed, randomise, dice, binding,
                          control_scale, control_start, control_end, has_control=control is not None,
                          lock=lock, variations=variations)
    _wire(panel, presets)
    return panel


def _wire(panel: SettingsPanel, presets: Presets) -> None:
    def apply_preset(label):
        if label == CUSTOM:
            return gr.skip(), gr.skip()
        size = presets.size(label)
        return size.width, size.height

    panel.preset.input(apply_preset, panel.preset, [panel.width, panel.height], queue=False,
                       api_visibility="private")

    def match_preset(width, height):
        for size in presets.sizes:
            if (size.width, size.height) == (int(width), int(height)):
                return size.label
        return CUSTOM

    for slider in (panel.width, panel.height):
        slider.input(match_preset, [panel.width, panel.height], panel.preset, queue=False,
                     api_visibility="private")
    panel.dice.click(_roll, None, [panel.seed, panel.randomise], queue=False,
                     api_visibility="private")


def _roll():
    # A rolled seed is meant to be kept: untick Randomise so Generate uses it.
    return random.randint(0, MAX_SEED), False
