"""Generation settings: size and aspect presets, steps, guidance, seed, binding strength."""

from __future__ import annotations

import random
from dataclasses import dataclass

import gradio as gr

from .config import Defaults, Presets
from .generation import MAX_SEED

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

    @property
    def inputs(self) -> list:
        """``[width, height, steps, guidance, seed, randomise, binding]``, in that order."""
        return [self.width, self.height, self.steps, self.guidance, self.seed, self.randomise,
                self.binding]


def build_settings_panel(presets: Presets, defaults: Defaults) -> SettingsPanel:
    limits = presets.limits
    start = presets.size(defaults.size)
    labels = [p.label for p in presets.sizes]
    preset = gr.Dropdown(labels + [CUSTOM], value=start.label, label="Size and aspect",
                         elem_id="size-preset")
    with gr.Row():
        width = gr.Slider(limits.min_side, limits.max_side, value=start.width, step=16,
                          label="Width", elem_id="width", min_width=120)
        height = gr.Slider(limits.min_side, limits.max_side, value=start.height, step=16,
                           label="Height", elem_id="height", min_width=120)
    with gr.Row():
        steps = gr.Slider(1, limits.max_steps, value=defaults.steps, step=1, label="Steps",
                          elem_id="steps", min_width=120)
        guidance = gr.Slider(0.0, limits.max_guidance, value=defaults.guidance, step=0.1,
                             label="Guidance", elem_id="guidance", min_width=120)
    binding = gr.Slider(0.0, limits.max_binding_strength, value=defaults.binding_strength,
                        step=0.05, label="Binding strength",
                        info="How firmly each subject holds to its skeleton (0 = ignore poses)",
                        elem_id="binding")
    with gr.Row(equal_height=True, elem_classes=["seed-row"]):
        seed = gr.Number(value=0, label="Seed", precision=0, minimum=0, maximum=MAX_SEED,
                         elem_id="seed", scale=3, min_width=110)
        dice = gr.Button("New seed", size="sm", scale=0, min_width=84, elem_id="dice")
        randomise = gr.Checkbox(value=True, label="Randomise", elem_id="randomise", scale=2,
                                min_width=100)
    panel = SettingsPanel(preset, width, height, steps, guidance, seed, randomise, dice, binding)
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
