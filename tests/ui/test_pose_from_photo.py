"""Pose from a photo behind the studio's control: the built-in BlazePose detector on a real
photograph, and controlnet_aux's OpenPose body detector, still selectable.

No real OpenPose weights exist here, so its loading path is proven with a weights file of the
real layout holding random values; without any file it explains what is missing.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from pose_db.library.detector import BODY_WEIGHTS, PoseDetector, person_from_keypoints
from ui.panels.photo import detect_pose


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory):
    torch = pytest.importorskip("torch")
    from controlnet_aux.open_pose.model import bodypose_model

    torch.manual_seed(0)
    state = bodypose_model().state_dict()
    folder = tmp_path_factory.mktemp("openpose")
    # body_pose_model.pth stores keys without the block prefix ("conv1_1.weight"):
    # controlnet_aux's `transfer` maps them back, so the file must look the same.
    torch.save({".".join(k.split(".")[1:]): v for k, v in state.items()}, folder / BODY_WEIGHTS)
    return folder


def test_default_detector_finds_the_astronaut():
    pytest.importorskip("ai_edge_litert")
    skimage = pytest.importorskip("skimage")
    detector = PoseDetector.load()
    assert detector.available and "BlazePose" in detector.name
    pose = detect_pose(detector, str(Path(skimage.__file__).parent / "data" / "astronaut.png"))
    assert (pose["canvas_width"], pose["canvas_height"]) == (512, 512) and len(pose["people"]) == 1
    x, y, c = pose["people"][0]["pose_keypoints_2d"][:3]  # the nose; hand-annotated at (224, 128)
    assert c == 1 and abs(x - 224) < 25 and abs(y - 128) < 25


def test_photo_without_people_says_so(tmp_path):
    pytest.importorskip("ai_edge_litert")
    blank = tmp_path / "wall.png"
    Image.new("RGB", (320, 240), (200, 200, 200)).save(blank)
    with pytest.raises(gr.Error, match="No person was found"):
        detect_pose(PoseDetector.load(), str(blank))


def test_missing_weights_explain_what_to_do(tmp_path):
    detector = PoseDetector.load(tmp_path, kind="openpose")
    assert not detector.available
    assert "huggingface-cli download lllyasviel/Annotators body_pose_model.pth" in detector.reason
    with pytest.raises(gr.Error, match="body_pose_model.pth"):
        detect_pose(detector, "photo.png")
    with pytest.raises(gr.Error, match="no detector"):
        detect_pose(None, "photo.png")


def test_loads_real_layout_and_runs(random_weights, tmp_path):
    detector = PoseDetector.load(random_weights, kind="openpose")
    assert detector.available and "body_pose_model.pth" in detector.name
    photo = Image.fromarray(np.random.default_rng(0).integers(0, 255, (160, 120, 3),
                                                              dtype=np.uint8))
    scene = detector.detect(photo)
    assert (scene.width, scene.height) == (120, 160)  # the canvas is the photo
    path = tmp_path / "photo.png"
    photo.save(path)
    if scene.people:  # random weights may or may not "see" someone; both paths must be sane
        assert detect_pose(detector, str(path))["people"]
    else:
        with pytest.raises(gr.Error, match="No person was found"):
            detect_pose(detector, str(path))


def test_detector_keypoints_become_body18_person():
    points = [SimpleNamespace(x=0.5, y=0.25)] + [None] * 17
    person = person_from_keypoints(points, width=200, height=100)
    assert person.visible.tolist() == [True] + [False] * 17
    assert person.xy[0].tolist() == [100.0, 25.0]


def test_bad_photo_is_a_clear_error(random_weights, tmp_path):
    bad = tmp_path / "x.png"
    bad.write_bytes(b"GIF89a nope")
    with pytest.raises(gr.Error, match="photo"):
        detect_pose(PoseDetector.load(random_weights, kind="openpose"), str(bad))
    with pytest.raises(gr.Error, match="Upload a photo"):
        detect_pose(PoseDetector.load(random_weights, kind="openpose"), None)


def test_app_builds_blazepose_by_default_and_openpose_when_asked(tmp_path):
    pytest.importorskip("ai_edge_litert")
    from app import build_detector, parse_args

    engine = SimpleNamespace(info=lambda: SimpleNamespace(kind="tiny", device="cpu"))
    assert build_detector(parse_args([]), engine).kind == "blazepose"
    assert build_detector(parse_args(["--openpose", str(tmp_path)]), engine).kind == "openpose"  # as before
    assert build_detector(parse_args(["--detector", "dwpose"]), engine).kind == "dwpose"
    assert build_detector(parse_args(["--detector", "blazepose", "--openpose", str(tmp_path)]), engine).available
