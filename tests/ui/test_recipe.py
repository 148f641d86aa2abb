"""Recipes ride inside result PNGs and come back out intact."""

from __future__ import annotations

import io

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
