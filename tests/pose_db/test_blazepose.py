"""BlazePose on LiteRT: the graph's pieces (anchors, decoding, NMS, regions, mapping) and the
real models on real photographs against hand annotations (tests/data/photo_keypoints.json)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from pose_db.library import blazepose as bp
from pose_db.library.detector import PoseDetector, photo_array
from pose_db.scene.model import PoseError
from pose_db.scene.skeleton import KEYPOINT_INDEX, KEYPOINT_NAMES

pytest.importorskip("ai_edge_litert")

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "photo_keypoints.json"
PHOTOS = {p["name"]: p for p in json.loads(FIXTURE.read_text())["photos"]}
FACE = {"nose", "r_eye", "l_eye", "r_ear", "l_ear"}
# Of the photo's body unit (shoulder width; twice eye-to-shoulder in profile). Hand annotations
# are +-10 px on faces and +-25 px under bulky suits; measured worst errors: face 0.09, body 0.22
# (the astronaut's right arm inside her pressure suit).
FACE_TOLERANCE, BODY_TOLERANCE = 0.12, 0.25


def photo_path(name: str) -> Path:
    import importlib.util

    photo = PHOTOS[name]
    spec = importlib.util.find_spec(photo["package"])
    if spec is None or spec.origin is None:
        pytest.skip(f"{photo['package']} is not installed")
    return Path(spec.origin).parent / photo["path"]


def body_unit(photo: dict) -> float:
    j = photo["joints"]
    if "r_shoulder" in j and "l_shoulder" in j:
        return math.dist(j["r_shoulder"], j["l_shoulder"])
    return 2 * math.dist(j["r_eye"], j["r_shoulder"])


@pytest.fixture(scope="module")
def detector():
    return PoseDetector.load().require()


# -- the mapping, joint by joint --------------------------------------------------------------

EXPECTED_SOURCE = {  # BODY-18 name -> BlazePose-33 index (MediaPipe's PoseLandmark enum)
    "nose": 0, "r_shoulder": 12, "r_elbow": 14, "r_wrist": 16, "l_shoulder": 11, "l_elbow": 13,
    "l_wrist": 15, "r_hip": 24, "r_knee": 26, "r_ankle": 28, "l_hip": 23, "l_knee": 25, "l_ankle": 27,
    "r_eye": 5, "l_eye": 2, "r_ear": 8, "l_ear": 7,
}


@pytest.mark.parametrize("name", KEYPOINT_NAMES)
def test_each_body18_joint_comes_from_its_blazepose_landmark(name):
    xy33 = np.arange(66, dtype=float).reshape(33, 2) * 3 + 1  # every landmark at its own place
    shown = np.ones(33, dtype=bool)
    person = bp.body18_from_33(xy33, shown)
    j = KEYPOINT_INDEX[name]
    if name == "neck":
        assert person.xy[j].tolist() == ((xy33[11] + xy33[12]) / 2).tolist()
    else:
        src = EXPECTED_SOURCE[name]
        assert bp.BLAZEPOSE_NAMES[src] == name.replace("r_", "right_").replace("l_", "left_")
        assert person.xy[j].tolist() == xy33[src].tolist()
    assert person.visible[j]
    hidden = shown.copy()
    if name == "neck":
        hidden[12] = False  # one shoulder hidden hides the neck
    else:
        hidden[EXPECTED_SOURCE[name]] = False
    assert not bp.body18_from_33(xy33, hidden).visible[j]
    lost = 2 if name in ("neck", "r_shoulder", "l_shoulder") else 1  # a hidden shoulder hides the neck too
    assert bp.body18_from_33(xy33, hidden).visible.sum() == 18 - lost


def test_visibility_threshold_and_photo_edges_hide_points():
    xy = np.full((39, 2), 50.0)
    xy[bp._BP["left_wrist"]] = (250.0, 50.0)  # outside a 200-wide photo
    vis, pres = np.ones(39), np.ones(39)
    vis[bp._BP["nose"]] = 0.49
    pres[bp._BP["left_knee"]] = 0.3
    found = bp.Landmarks(xy, vis, pres, 1.0, bp.Roi(0, 0, 1, 0))
    person = bp.to_body18(found, 200, 100)
    hidden = {KEYPOINT_NAMES[i] for i in np.flatnonzero(~person.visible)}
    assert hidden == {"nose", "l_knee", "l_wrist"}
    assert person.xy[KEYPOINT_INDEX["l_wrist"]].tolist() == [199.0, 50.0]  # the guess, clipped into the photo


# -- the graph's pieces -----------------------------------------------------------------------

def test_anchor_layout_matches_the_model_output():
    anchors = bp.ssd_anchors()
    assert anchors.shape == (2254, 2)
    assert anchors[0].tolist() == pytest.approx([0.5 / 28, 0.5 / 28])
    assert anchors[1].tolist() == anchors[0].tolist()  # 2 anchors per cell at stride 8
    assert anchors[2].tolist() == pytest.approx([1.5 / 28, 0.5 / 28])
    assert anchors[1568].tolist() == pytest.approx([0.5 / 14, 0.5 / 14])  # stride 16 starts after 28*28*2
    assert anchors[1960].tolist() == pytest.approx([0.5 / 7, 0.5 / 7])  # strides 32 x3 share a 7x7 grid, 6 each
    assert len({tuple(a) for a in anchors[1960:1966]}) == 1


def test_decoding_offsets_are_relative_to_the_anchor_in_input_pixels():
    raw = np.zeros((2254, 12), np.float32)
    raw[100] = [22.4, -11.2, 44.8, 44.8, 0, 44.8, 0, 0, 0, 0, 0, -44.8]
    scores = np.full(2254, -10.0, np.float32)
    scores[100] = 2.0
    s, rows = bp.decode_detections(raw[None], scores[None, :, None])
    assert s.tolist() == pytest.approx([1 / (1 + math.exp(-2))])
    ax, ay = bp.ssd_anchors()[100]
    points = rows[0, 4:].reshape(4, 2)
    assert points[0].tolist() == pytest.approx([ax, ay + 0.2])  # mid-hip
    assert points[1].tolist() == pytest.approx([ax, ay])
    centre = (rows[0, :2] + rows[0, 2:4]) / 2
    assert centre.tolist() == pytest.approx([ax + 0.1, ay - 0.05])
    torso = 0.2  # mid-hip (0.2 below the anchor) to mid-shoulder (keypoint 2, at the anchor)
    assert rows[0, 2] - rows[0, 0] == pytest.approx(bp.HEAD_PER_TORSO * torso)


def test_weighted_nms_merges_overlaps_and_keeps_separate_people():
    rows = np.array([[0, 0, 10, 10] + [0] * 8, [1, 0, 11, 10] + [2] * 8, [50, 50, 60, 60] + [5] * 8], float)
    kept = bp.weighted_nms(np.array([0.9, 0.6, 0.7]), rows)
    assert [round(s, 2) for s, _ in kept] == [0.9, 0.7]
    assert kept[0][1][0] == pytest.approx(0.6 / 1.5)  # score-weighted mean of the two overlapping boxes
    assert kept[0][1][4] == pytest.approx(1.2 / 1.5)
    assert bp.weighted_nms(np.array([]), np.zeros((0, 12))) == []


def test_region_is_centred_on_the_hips_sized_by_the_body_circle_and_upright():
    upright = bp.detection_roi(np.array([[100.0, 200.0], [100.0, 100.0]]))  # body circle straight above
    assert (upright.cx, upright.cy, upright.size) == (100.0, 200.0, 2 * 100 * 1.25)
    assert upright.rotation == pytest.approx(0.0)
    lying = bp.detection_roi(np.array([[100.0, 200.0], [200.0, 200.0]]))  # head to the right
    assert lying.rotation == pytest.approx(math.pi / 2)
    # the crop's "up" (u = 0.5, v = 0) is where the body circle points
    top = lying.to_image(np.array([0.5, 0.0]))
    assert top.tolist() == pytest.approx([100 + 125.0, 200.0])


def test_crop_matrix_inverts_to_image():
    import cv2

    roi = bp.Roi(300.0, 250.0, 180.0, 0.7)
    m = roi.crop_matrix(256)
    uv = np.array([[0.1, 0.2], [0.9, 0.5], [0.5, 0.5]])
    photo = roi.to_image(uv)
    back = cv2.transform(photo[None].astype(np.float32), m)[0] / 256
    assert back.ravel().tolist() == pytest.approx(uv.ravel().tolist(), abs=1e-4)


# -- real photographs -------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(PHOTOS))
def test_real_photo_joints_match_hand_annotations(detector, name):
    photo = PHOTOS[name]
    scene = detector.detect(photo_path(name))
    assert (scene.width, scene.height) == tuple(photo["size"])
    assert len(scene.people) == photo["people"]
    person = scene.people[0]
    unit = body_unit(photo)
    for joint, xy in photo["joints"].items():
        j = KEYPOINT_INDEX[joint]
        tolerance = (FACE_TOLERANCE if joint in FACE else BODY_TOLERANCE) * unit
        assert person.visible[j], f"{name}: {joint} should be visible"
        error = math.dist(person.xy[j], xy)
        assert error <= tolerance, f"{name}: {joint} is {error:.0f} px from the annotation (tolerance {tolerance:.0f})"


def test_joints_outside_the_photo_are_hidden(detector):
    shown = []
    for name, photo in PHOTOS.items():
        person = detector.detect(photo_path(name)).people[0]
        shown += [f"{name}:{j}" for j in photo["absent"] if person.visible[KEYPOINT_INDEX[j]]]
    # 18 joints lie outside these photos; measured: BlazePose shows one of them (Grace Hopper's
    # right wrist, guessed on her jacket). More than one is a regression.
    assert len(shown) <= 1, shown


def test_several_people_side_by_side(detector):
    from PIL import Image

    left = Image.open(photo_path("astronaut")).convert("RGB")
    right = Image.open(photo_path("grace_hopper")).convert("RGB").resize((512, 600))
    both = Image.new("RGB", (1024, 600), (128, 128, 128))
    both.paste(left, (0, 44))
    both.paste(right, (512, 0))
    scene = detector.detect(both)
    assert len(scene.people) == 2
    noses = [p.xy[KEYPOINT_INDEX["nose"]] for p in scene.people]  # ordered left to right
    assert math.dist(noses[0], (224, 128 + 44)) < 25
    assert math.dist(noses[1], (512 + 265, 245)) < 25


@pytest.mark.parametrize("picture", ["blank", "noise", "grass", "brick"])
def test_no_people_gives_an_empty_scene(detector, picture):
    if picture == "blank":
        image = np.full((300, 400, 3), 200, np.uint8)
    elif picture == "noise":
        image = np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    else:
        skimage = pytest.importorskip("skimage")
        image = photo_array(Path(skimage.__file__).parent / "data" / f"{picture}.png")
    scene = detector.detect(image)
    assert scene.people == [] and (scene.width, scene.height) == (image.shape[1], image.shape[0])


def test_tiny_photos(detector):
    from PIL import Image

    astronaut = Image.open(photo_path("astronaut")).convert("RGB")
    small = detector.detect(astronaut.resize((96, 96)))
    assert (small.width, small.height) == (96, 96)
    if small.people:  # at 96 px it may or may not be found; if found it is where she is
        assert math.dist(small.people[0].xy[KEYPOINT_INDEX["nose"]], (224 * 96 / 512, 128 * 96 / 512)) < 8
    with pytest.raises(PoseError, match="at least 64 pixels"):
        detector.detect(astronaut.resize((40, 40)))


def test_huge_photo_is_scaled_into_the_canvas_with_its_skeleton(detector):
    from PIL import Image

    big = Image.open(photo_path("astronaut")).convert("RGB").resize((5120, 5120))
    scene = detector.detect(big)
    assert (scene.width, scene.height) == (4096, 4096)
    assert len(scene.people) == 1
    nose = scene.people[0].xy[KEYPOINT_INDEX["nose"]] / 8  # 4096 / 512
    assert math.dist(nose, PHOTOS["astronaut"]["joints"]["nose"]) < 0.12 * body_unit(PHOTOS["astronaut"])


def test_corrupt_and_non_images_get_clear_sentences(detector, tmp_path):
    png = photo_path("astronaut").read_bytes()
    truncated = tmp_path / "cut.png"
    truncated.write_bytes(png[: len(png) // 3])
    text = tmp_path / "notes.png"
    text.write_text("this is not a picture")
    with pytest.raises(PoseError, match="truncated or corrupt"):
        detector.detect(truncated)
    with pytest.raises(PoseError, match="not an image Pillow can read"):
        detector.detect(text)
    with pytest.raises(PoseError, match="No photo at"):
        detector.detect(tmp_path / "missing.jpg")
    with pytest.raises(PoseError, match="needs an RGB image"):
        detector.detect(np.zeros((100, 100, 7), np.uint8))
    with pytest.raises(PoseError, match="needs an image"):
        detector.detect(np.array([["a", "b"]], dtype=object))


def test_missing_or_broken_model_files_say_how_to_restore_them(tmp_path):
    missing = PoseDetector.load(tmp_path)
    assert not missing.available and missing.kind == "blazepose"
    assert "pose_detection.tflite" in missing.reason and "fetch_blazepose.py" in missing.reason
    for name in (bp.DETECTOR_FILE, bp.LANDMARK_FILES["full"]):
        (tmp_path / name).write_bytes(b"\0" * 1024)
    broken = PoseDetector.load(tmp_path)
    assert not broken.available and "not a valid model" in broken.reason
    with pytest.raises(PoseError, match="Unknown BlazePose model"):
        bp.BlazePose(model="heavy")


def test_committed_model_files_match_their_hashes():
    import hashlib

    sums = dict(reversed(line.split()) for line in (bp.ASSETS_DIR / "SHA256SUMS").read_text().splitlines())
    assert set(sums) == {bp.DETECTOR_FILE, *bp.LANDMARK_FILES.values()}
    for name, digest in sums.items():
        assert hashlib.sha256((bp.ASSETS_DIR / name).read_bytes()).hexdigest() == digest, name
    assert "Apache License" in (bp.ASSETS_DIR / "LICENSE").read_text()
