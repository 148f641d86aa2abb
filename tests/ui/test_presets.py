"""One source per setting: limits and sizes come from ``ui/presets.yaml`` alone, the prompt
length and the subject count from ``pose_db``."""

from __future__ import annotations

import dataclasses

import gradio as gr
import pytest
import yaml

from pose_db.prompt import MAX_PROMPT_CHARS
from pose_db.scene import MAX_SUBJECTS
from ui.config import PRESETS_PATH, Limits, Presets, StudioConfig


@pytest.fixture(scope="module")
def data() -> dict:
    return yaml.safe_load(PRESETS_PATH.read_text())


def test_limits_are_what_the_yaml_says(data):
    assert Limits.load() == Limits(**data["limits"])
    assert dataclasses.asdict(StudioConfig().limits) == data["limits"]


def test_limits_have_no_second_copy_in_python():
    assert all(f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
               for f in dataclasses.fields(Limits))
    with pytest.raises(TypeError):
        Limits()  # type: ignore[call-arg]


def test_sizes_are_what_the_yaml_says(data):
    sizes = [(p.name, p.width, p.height) for p in Presets.load().sizes]
    assert sizes == [(s["name"], s["width"], s["height"]) for s in data["sizes"]]


def test_product_limits_are_not_studio_settings(data):
    # The prompt length and the number of subjects belong to pose_db, not to the YAML.
    assert not {"max_prompt_chars", "max_subjects"} & set(data["limits"])
    assert not hasattr(Limits.load(), "max_prompt_chars")


def test_panels_use_the_product_limits():
    from ui.panels.retrieval import PEOPLE_CHOICES, build_retrieval_prompt
    from ui.panels.subjects import build_subjects_panel

    with gr.Blocks():
        prompt, _, _ = build_retrieval_prompt()
        subjects = build_subjects_panel(Limits.load())
    assert prompt.max_length == MAX_PROMPT_CHARS
    assert len(subjects.cards) == MAX_SUBJECTS
    assert [value for _, value in PEOPLE_CHOICES] == list(range(MAX_SUBJECTS + 1))
