"""The pose ControlNet's settings: shown and sent only when the engine loaded a ControlNet."""

from __future__ import annotations

import gradio as gr

from ui.config import Presets
from ui.events import _control_values
from ui.panels.settings import build_settings_panel


def _panel(control):
    presets = Presets.load()
    with gr.Blocks():
        return build_settings_panel(presets, presets.defaults["real"], control=control)


def test_controlnet_settings_follow_the_loaded_model_card():
    panel = _panel((0.9, 0.0, 0.65))
    assert panel.has_control
    assert [s.value for s in panel.control] == [0.9, 0.0, 0.65]
    values = dict(zip(panel.control, (0.7, 0.1, 0.5)))
    assert _control_values(values, panel) == {"controlnet_conditioning_scale": 0.7,
                                              "control_guidance_start": 0.1, "control_guidance_end": 0.5}


def test_without_a_controlnet_nothing_is_shown_or_sent():
    panel = _panel(None)
    assert not panel.has_control
    assert _control_values({}, panel) == {}
