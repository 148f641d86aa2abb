"""The studio driven headlessly through gradio_client, as a script or another app would.

A real Gradio server (in-process, free port), the tiny engine and a small real pose index.
"""

from __future__ import annotations

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from pose_db.prompt import MAX_PROMPT_CHARS
from ui.recipe import read_recipe

EXAMPLES = "assets/examples"


@pytest.fixture(scope="module")
def client(studio_url):
    return Client(studio_url, verbose=False)


@pytest.fixture(scope="module")
def handshake(client):
    return client.predict("Mia and Leo shaking hands", 2, api_name="/retrieve")


def test_named_endpoints(client):
    names = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert {"/retrieve", "/generate", "/pose_from_photo", "/read_recipe"} <= names


def test_retrieve_returns_scored_openpose(handshake):
    assert handshake["matched"] is True
    assert handshake["results"], "a handshake prompt must match the handshake library"
    scores = [r["score"] for r in handshake["results"]]
    assert scores == sorted(scores, reverse=True)
    assert all(s >= handshake["threshold"] for s in scores)
    best = handshake["results"][0]
    assert best["people"] == 2 and len(best["pose"]["people"]) == 2
    assert len(best["pose"]["people"][0]["pose_keypoints_2d"]) == 54
    assert best["prompt"] and best["action"]


def test_retrieve_without_confident_match(client):
    answer = client.predict("qwzx blorf vantablack tessellation", 0, api_name="/retrieve")
    assert answer["matched"] is False and answer["results"] == []


def test_generate_end_to_end(client, handshake):
    pose = handshake["results"][0]["pose"]
    pose["people"][0]["subject"], pose["people"][1]["subject"] = 0, 1
    path, recipe = client.predict(
        "Mia and Leo shaking hands at a station",
        [handle_file(f"{EXAMPLES}/mia.png"), handle_file(f"{EXAMPLES}/leo.png")],
        ["Mia", "Leo"], pose, 128, 96, 2, 3.5, 1234, 0.9, api_name="/generate")
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == (128, 96)
    stored = read_recipe(path)  # the file itself carries the recipe
    assert stored.prompt == recipe["prompt"] == "Mia and Leo shaking hands at a station"
    assert stored.seed == 1234 and stored.num_inference_steps == 2
    assert stored.subject_names == ["Mia", "Leo"]
    assert [p["subject"] for p in stored.pose["people"]] == [0, 1]
    assert "tiny" in stored.engine
    # ...and the studio reads it back through its own endpoint.
    assert client.predict(handle_file(path), api_name="/read_recipe") == recipe


def test_generate_text_only_with_random_seed(client):
    path, recipe = client.predict("a quiet lake at dawn", [], [], None, 64, 64, 1, 3.5, -1, 1.0,
                                  api_name="/generate")
    assert recipe["pose"] is None and recipe["subject_names"] == []
    assert 0 <= recipe["seed"] < 2**31
    assert read_recipe(path).seed == recipe["seed"]


def _generate(client, **changes):
    args = dict(prompt="Mia waves", subject_images=[handle_file(f"{EXAMPLES}/mia.png")],
                subject_names=["Mia"], pose=None, width=64, height=64, steps=1, guidance=3.5,
                seed=1, binding_strength=1.0)
    args.update(changes)
    return client.predict(*args.values(), api_name="/generate")


@pytest.mark.parametrize("changes, words", [
    (dict(prompt="   "), "Type a prompt"),
    (dict(prompt="x" * (MAX_PROMPT_CHARS + 1)), "shorten it"),
    (dict(width=8), "Width must be between"),
    (dict(steps=0), "Steps must be between"),
    (dict(subject_names=["Mia", "Leo"]), "one name per subject image"),
    (dict(pose="{not json"), "not valid JSON"),
    (dict(pose={"people": [{"pose_keypoints_2d": [1, 2]}]}), "pose"),
    (dict(pose={"canvas_width": 64, "canvas_height": 64, "people": [
        {"pose_keypoints_2d": [10, 10, 1] * 18, "subject": 3}]}), "no image"),
    (dict(subject_names=["Mia", "mia"],
          subject_images=[handle_file(f"{EXAMPLES}/mia.png")] * 2), "different name"),
    (dict(subject_images=[handle_file(f"{EXAMPLES}/mia.png")] * 5,
          subject_names=[]), "at most 4"),
])
def test_generate_bad_inputs_give_clear_errors(client, changes, words):
    with pytest.raises(AppError) as info:
        _generate(client, **changes)
    assert words in str(info.value)


def test_non_image_subject_is_refused(client, tmp_path):
    fake = tmp_path / "notes.png"
    fake.write_text("not a picture")
    with pytest.raises(AppError, match="not an image"):
        _generate(client, subject_images=[handle_file(str(fake))])


def test_retrieve_bad_inputs(client):
    with pytest.raises(AppError, match="Type a prompt"):
        client.predict("", 0, api_name="/retrieve")
    with pytest.raises(AppError, match="People must be"):
        client.predict("two people hugging", 40, api_name="/retrieve")


def test_read_recipe_refuses_foreign_files(client, tmp_path):
    jpeg = tmp_path / "photo.jpg"
    Image.new("RGB", (8, 8)).save(jpeg)
    with pytest.raises(AppError, match="JPEG"):
        client.predict(handle_file(str(jpeg)), api_name="/read_recipe")


def test_pose_from_photo_without_weights_explains(client):
    with pytest.raises(AppError, match="body_pose_model.pth|no detector"):
        client.predict(handle_file(f"{EXAMPLES}/mia.png"), api_name="/pose_from_photo")


def test_gpu_events_share_one_slot(studio):
    demo, _ = studio
    gpu = [fn for fn in demo.fns.values() if fn.concurrency_id == "gpu"]
    names = {fn.name for fn in gpu}
    assert {"generate", "pose_from_photo"} <= names and len(gpu) >= 3  # API + page generate
    assert all(fn.concurrency_limit == 1 for fn in gpu)
    assert demo._queue.max_size is not None


def test_upload_limit_and_no_broad_paths(studio):
    demo, _ = studio
    assert demo.max_file_size and demo.max_file_size <= 20 * 1024 * 1024
    assert not demo.allowed_paths
