"""Recipes ride inside result PNGs and come back out intact."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image

from ui.recipe import RECIPE_KEY, Recipe, RecipeError, encode_png, read_recipe, write_png

POSE = {"canvas_width": 512, "canvas_height": 512,
        "people": [{"pose_keypoints_2d": [10.0, 20.0, 1.0] * 18, "subject": 1}]}


def _recipe(**changes) -> Recipe:
    values = dict(prompt="Mia and Leo shaking hands — ünïcode ✓", seed=1234, width=256,
                  height=192, num_inference_steps=4, guidance_scale=3.5, binding_strength=0.8,
                  subject_names=["Mia", "Leo"], pose=POSE, engine="tiny")
    values.update(changes)
    return Recipe(**values)


def test_round_trip_through_bytes_and_file(tmp_path):
    image = Image.new("RGB", (256, 192), (10, 20, 30))
    recipe = _recipe()
    assert read_recipe(encode_png(image, recipe)) == recipe
    path = write_png(image, recipe, tmp_path / "out.png")
    assert read_recipe(path) == recipe
    assert not list(tmp_path.glob("*.part"))  # atomic write leaves no temp file
    with Image.open(path) as reopened:
        assert reopened.format == "PNG"
        assert reopened.text["prompt"] == recipe.prompt  # readable by plain PNG viewers
        assert '"subject":1' in reopened.text["pose"]  # ControlNet tools get the pose alone
        assert reopened.getpixel((0, 0)) == (10, 20, 30)  # lossless


def test_recipe_without_pose():
    recipe = _recipe(pose=None, subject_names=[])
    assert read_recipe(encode_png(Image.new("RGB", (8, 8)), recipe)) == recipe


def test_png_without_recipe():
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="PNG")
    with pytest.raises(RecipeError, match="no ASTRA recipe"):
        read_recipe(buffer.getvalue())


def test_jpeg_is_refused_with_reason():
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="JPEG")
    with pytest.raises(RecipeError, match="JPEG"):
        read_recipe(buffer.getvalue())


def test_not_an_image():
    with pytest.raises(RecipeError, match="not a readable PNG"):
        read_recipe(b"hello")


@pytest.mark.parametrize("text, words", [
    ("{not json", "not valid JSON"),
    ('{"prompt": "x"}', "lacks seed"),
    ('{"prompt": "x", "seed": "abc", "width": 1, "height": 1}', "malformed"),
    ('[1, 2]', "not a JSON object"),
])
def test_tampered_recipes(text, words):
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_itxt(RECIPE_KEY, text)
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="PNG", pnginfo=info)
    with pytest.raises(RecipeError, match=words):
        read_recipe(buffer.getvalue())


def _png_with_recipe_text(text: str) -> bytes:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_itxt(RECIPE_KEY, text, zip=True)
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


@pytest.mark.parametrize("changes, words", [
    (dict(seed=2**64), "impossible seed"),  # orjson cannot even send it back (was HTTP 500)
    (dict(seed=-3), "impossible seed"),
    (dict(width=10**30), "impossible width"),
    (dict(guidance_scale=float("inf")), "impossible guidance_scale"),
    (dict(pose={"people": "nope"}), "not valid OpenPose"),
])
def test_edited_values_are_refused_on_reading(changes, words):
    text = json.dumps(_recipe(**changes).__dict__ | changes)
    with pytest.raises(RecipeError, match=words):
        read_recipe(_png_with_recipe_text(text))


def test_a_recipe_nested_100k_deep_is_refused_with_a_sentence():
    deep = '{"prompt": "x", "seed": 1, "width": 64, "height": 64, "pose": ' + "[" * 100_000 + "]" * 100_000 + "}"
    with pytest.raises(RecipeError, match="nested too deeply"):
        read_recipe(_png_with_recipe_text(deep))
    a_pose_nested_deep = ('{"prompt": "x", "seed": 1, "width": 64, "height": 64, "pose": {"people": '
                          + "[" * 500 + "]" * 500 + "}}")
    with pytest.raises(RecipeError, match="not valid OpenPose"):
        read_recipe(_png_with_recipe_text(a_pose_nested_deep))


@pytest.mark.parametrize("changes, words", [
    (dict(width=10**9), "Width must be between"),
    (dict(num_inference_steps=10**6), "Steps must be between"),
    (dict(binding_strength=50.0), "Binding strength must be between"),
    (dict(prompt="   "), "Type a prompt"),
])
def test_restore_applies_generates_limits(changes, words):
    import gradio as gr

    from ui.config import Limits
    from ui.generation import check_recipe

    recipe = read_recipe(encode_png(Image.new("RGB", (8, 8)), _recipe(**changes)))  # readable...
    with pytest.raises(gr.Error) as info:
        check_recipe(recipe, Limits.load())  # ...but never restored
    assert words in info.value.message and "not restored" in info.value.message
    good = _recipe()
    assert check_recipe(good, Limits.load()) is good
