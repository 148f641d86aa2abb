"""The one detector interface (`Detector` / `PoseDetector`): kinds, inputs, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pose_db.library.detector import (
    DEFAULT_KIND,
    KINDS,
    Detector,
    PoseDetector,
    main,
    photo_array,
)
from pose_db.scene.model import Person, PoseError, PoseScene
from pose_db.scene.openpose_io import read_openpose
from pose_db.scene.skeleton import KEYPOINT_INDEX

skimage = pytest.importorskip("skimage")
ASTRONAUT = Path(skimage.__file__).parent / "data" / "astronaut.png"
CAMERAMAN = Path(skimage.__file__).parent / "data" / "camera.png"  # greyscale


def test_blazepose_is_the_default_and_others_stay_selectable(tmp_path):
    assert DEFAULT_KIND == "blazepose" and set(KINDS) == {"blazepose", "openpose", "dwpose"}
    pytest.importorskip("ai_edge_litert")
    default = PoseDetector.load()
    assert default.available and default.kind == "blazepose" and "BlazePose full" in default.name
    assert isinstance(default, Detector)  # the protocol the evaluation's OKS metric calls
    openpose = PoseDetector.load(tmp_path, kind="openpose")
    assert openpose.kind == "openpose" and not openpose.available and "blazepose" in openpose.reason
    with pytest.raises(PoseError, match="use blazepose"):
        PoseDetector.load(kind="yolo")


def test_any_object_with_detect_is_a_detector():
    class Fixed:
        available, reason, name = True, "", "fixed"

        def detect(self, image, min_keypoints=1):
            return PoseScene(64, 64, [])

    assert isinstance(Fixed(), Detector)
    assert not isinstance(object(), Detector)


def test_a_backend_sees_rgb_and_people_come_back_filtered_and_ordered():
    seen = []

    def backend(rgb):
        seen.append((rgb.shape, rgb.dtype))
        right = Person.from_points({0: (150, 20), 1: (150, 40), 2: (140, 40)})
        left = Person.from_points({0: (30, 20), 1: (30, 40)})
        lonely = Person.from_points({0: (90, 90)})
        return [right, left, lonely]

    detector = PoseDetector(True, name="fake", _backend=backend)
    scene = detector.detect(np.zeros((100, 200), np.uint8), min_keypoints=2)  # greyscale array
    assert seen == [((100, 200, 3), np.uint8)]
    assert [p.xy[0, 0] for p in scene.people] == [30, 150]  # left to right, the 1-point person dropped


@pytest.mark.parametrize("kind", ["grey", "rgba", "float", "pil-palette", "path"])
def test_photo_array_accepts_common_inputs(kind):
    from PIL import Image

    rgb = np.asarray(Image.open(ASTRONAUT).convert("RGB"))
    image = {
        "grey": rgb[..., 0], "rgba": np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)]),
        "float": rgb / 255.0, "pil-palette": Image.fromarray(rgb).convert("P"), "path": str(ASTRONAUT),
    }[kind]
    out = photo_array(image)
    assert out.shape == (512, 512, 3) and out.dtype == np.uint8
    if kind in ("rgba", "float", "path"):
        assert np.abs(out.astype(int) - rgb).max() <= 1


def test_photo_array_refuses_what_is_not_a_photo(tmp_path):
    with pytest.raises(PoseError, match="at least 64 pixels"):
        photo_array(np.zeros((10, 500, 3), np.uint8))
    with pytest.raises(PoseError, match="numbers 0-255"):
        photo_array(np.full((80, 80, 3), np.nan))
    with pytest.raises(PoseError, match="needs an image"):
        photo_array(np.array([["a"]]))


def test_greyscale_photo_is_detected():
    pytest.importorskip("ai_edge_litert")
    scene = PoseDetector.load().detect(str(CAMERAMAN))
    assert len(scene.people) == 1
    nose = scene.people[0].xy[KEYPOINT_INDEX["nose"]]
    assert np.hypot(*(nose - (253, 167))) < 25  # tests/data/photo_keypoints.json


def test_cli_prints_openpose_json(tmp_path, capsys):
    pytest.importorskip("ai_edge_litert")
    assert main([str(ASTRONAUT)]) == 0
    out = capsys.readouterr()
    data = json.loads(out.out)
    assert (data["canvas_width"], data["canvas_height"]) == (512, 512)
    assert len(data["people"]) == 1 and len(data["people"][0]["pose_keypoints_2d"]) == 54
    assert "1 person found by BlazePose" in out.err
    target = tmp_path / "pose.json"
    assert main([str(ASTRONAUT), "--out", str(target), "--model", "lite"]) == 0
    assert read_openpose(target.read_text()).people


def test_cli_bad_input_is_one_clear_line(tmp_path, capsys):
    bad = tmp_path / "x.jpg"
    bad.write_bytes(b"\xff\xd8 not really")
    assert main([str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: x.jpg") and "image" in err[0]
    assert main([str(tmp_path / "none.png")]) == 2
    assert capsys.readouterr().err.strip() == f"error: No photo at {tmp_path / 'none.png'}: give the path of an image file."


def test_importer_grows_the_library_from_real_photos(tmp_path):
    pytest.importorskip("ai_edge_litert")
    import shutil

    from pose_db.library.importers import import_image_folder

    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(ASTRONAUT, folder / "astronaut.png")
    (folder / "astronaut.txt").write_text("an astronaut in her orange suit smiling\n")
    report = import_image_folder(folder, PoseDetector.load())
    assert [e.id for e in report.entries] == ["detector-astronaut-0"] and not report.skipped
    entry = report.entries[0]
    assert entry.source == "detector" and entry.people == 1
    assert entry.scene.people[0].visible[KEYPOINT_INDEX["nose"]]
