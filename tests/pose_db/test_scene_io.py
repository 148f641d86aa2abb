"""OpenPose JSON reading, writing and validation."""

import json
import math

import numpy as np
import pytest

from pose_db.scene.model import MAX_PEOPLE, Person, PoseError, PoseScene
from pose_db.scene.openpose_io import (
    dumps_openpose,
    load_openpose,
    person_from_coco17,
    read_openpose,
    write_openpose,
)
from pose_db.scene.skeleton import KEYPOINT_INDEX, NUM_KEYPOINTS
from tests.helpers.poses import standing_person, three_person_scene


def test_write_uses_pixels_c1_and_zero_triples_for_hidden():
    p = standing_person(200, 100)
    p.visible[KEYPOINT_INDEX["l_ear"]] = False
    data = write_openpose(PoseScene(512, 512, [p]))
    flat = data["people"][0]["pose_keypoints_2d"]
    assert len(flat) == 54
    assert flat[3 * KEYPOINT_INDEX["l_ear"]: 3 * KEYPOINT_INDEX["l_ear"] + 3] == [0.0, 0.0, 0.0]
    neck = KEYPOINT_INDEX["neck"]
    assert flat[3 * neck: 3 * neck + 3] == [p.xy[neck, 0], p.xy[neck, 1], 1.0]
    assert data["canvas_width"] == 512 and "subject" not in data["people"][0]


def test_round_trip_is_identical():
    scene = three_person_scene()
    scene.people[1].visible[KEYPOINT_INDEX["r_eye"]] = False
    text = dumps_openpose(scene)
    again = read_openpose(text)
    assert again == scene
    assert write_openpose(again) == json.loads(text)
    assert [p.subject for p in again.people] == [0, 1, None]


def test_reads_controlnet_normalised_coordinates():
    scene = three_person_scene()
    data = write_openpose(scene)
    for person in data["people"]:
        flat = person["pose_keypoints_2d"]
        for k in range(NUM_KEYPOINTS):
            flat[3 * k] /= scene.width
            flat[3 * k + 1] /= scene.height
    back = read_openpose(data)
    for a, b in zip(back.people, scene.people):
        np.testing.assert_allclose(a.visible_xy, b.visible_xy, atol=1e-9)


def test_reads_one_frame_list_bytes_and_files(tmp_path):
    scene = three_person_scene()
    data = write_openpose(scene)
    assert read_openpose([data]) == scene
    assert read_openpose(json.dumps(data).encode()) == scene
    path = tmp_path / "pose.json"
    path.write_text(json.dumps(data))
    assert load_openpose(path) == scene
    assert read_openpose(path) == scene


def test_missing_canvas_is_inferred_from_points():
    data = write_openpose(PoseScene(1024, 768, [standing_person(700, 150, height=500)]))
    del data["canvas_width"], data["canvas_height"]
    scene = read_openpose(data)
    assert scene.width > 700 + 0.15 * 500 and scene.height > 150 + 0.96 * 500 and scene.width % 64 == 0


def test_confidence_below_one_still_counts_as_visible():
    data = write_openpose(PoseScene(512, 512, [standing_person(200, 100)]))
    data["people"][0]["pose_keypoints_2d"][2] = 0.4  # a detector's confidence for the nose
    assert read_openpose(data).people[0].visible[0]


def test_coco17_gets_neck_from_both_shoulders():
    flat = [0.0] * 51
    # COCO order: 5 l_shoulder, 6 r_shoulder
    flat[15:18] = [120, 100, 2]
    flat[18:21] = [80, 104, 2]
    p = person_from_coco17(flat)
    assert p.visible[KEYPOINT_INDEX["neck"]]
    np.testing.assert_allclose(p.xy[KEYPOINT_INDEX["neck"]], [100, 102])
    flat[18:21] = [0, 0, 0]
    assert not person_from_coco17(flat).visible[KEYPOINT_INDEX["neck"]]
    scene = read_openpose({"canvas_width": 256, "canvas_height": 256,
                           "people": [{"pose_keypoints_2d": person_from_coco17_list()}]})
    assert scene.people[0].visible[KEYPOINT_INDEX["neck"]]


def person_from_coco17_list():
    flat = []
    for k in range(17):
        flat += [50 + 3 * k, 40 + 5 * k, 2]
    return flat


def test_hand_extras_survive_round_trip():
    data = write_openpose(PoseScene(512, 512, [standing_person(200, 100)]))
    data["people"][0]["hand_left_keypoints_2d"] = [10.0, 20.0, 0.9] * 21
    assert write_openpose(read_openpose(data))["people"][0]["hand_left_keypoints_2d"] == [10.0, 20.0, 0.9] * 21


def _valid():
    return write_openpose(PoseScene(512, 512, [standing_person(200, 100)]))


def _with(mutate):
    data = _valid()
    mutate(data)
    return data


BAD_INPUTS = {
    "not json": "hello",
    "broken json": "{\"people\": [",
    "number": 5,
    "no people": {"canvas_width": 512, "canvas_height": 512},
    "people not list": {"people": {"a": 1}},
    "person not object": {"people": [[1, 2, 3]]},
    "short keypoints": _with(lambda d: d["people"][0].__setitem__("pose_keypoints_2d", [1.0] * 53)),
    "string keypoint": _with(lambda d: d["people"][0]["pose_keypoints_2d"].__setitem__(4, "x")),
    "bool keypoint": _with(lambda d: d["people"][0]["pose_keypoints_2d"].__setitem__(4, True)),
    "nan": _with(lambda d: d["people"][0]["pose_keypoints_2d"].__setitem__(0, math.nan)),
    "inf": _with(lambda d: d["people"][0]["pose_keypoints_2d"].__setitem__(1, math.inf)),
    "negative confidence": _with(lambda d: d["people"][0]["pose_keypoints_2d"].__setitem__(2, -1)),
    "all hidden": _with(lambda d: d["people"][0].__setitem__("pose_keypoints_2d", [0.0] * 54)),
    "negative canvas": _with(lambda d: d.__setitem__("canvas_width", -512)),
    "tiny canvas": _with(lambda d: d.__setitem__("canvas_height", 10)),
    "absurd canvas": _with(lambda d: d.__setitem__("canvas_width", 10 ** 9)),
    "fractional canvas": _with(lambda d: d.__setitem__("canvas_width", 512.5)),
    "string canvas": _with(lambda d: d.__setitem__("canvas_width", "512")),
    "far off canvas": _with(lambda d: d["people"][0]["pose_keypoints_2d"].__setitem__(3, 1e7)),
    "too many people": _with(lambda d: d.__setitem__("people", d["people"] * (MAX_PEOPLE + 1))),
    "bad subject": _with(lambda d: d["people"][0].__setitem__("subject", 7)),
    "string subject": _with(lambda d: d["people"][0].__setitem__("subject", "Mia")),
    "bad hand": _with(lambda d: d["people"][0].__setitem__("hand_left_keypoints_2d", [1.0, 2.0])),
    "two frames": [_valid(), _valid()],
    "deep junk": {"people": [], "junk": json.loads("[" * 50 + "]" * 50)},
    "very deep text": "[" * 100000 + "]" * 100000,
    "not utf8": b"\xff\xfe{\x00",
}


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_every_malformed_input_raises_pose_error(name):
    with pytest.raises(PoseError) as err:
        read_openpose(BAD_INPUTS[name])
    assert len(str(err.value)) > 15  # a sentence, not a code


def test_unknown_keys_are_ignored():
    data = _valid()
    data["version"] = 1.3
    data["people"][0]["person_id"] = [-1]
    assert len(read_openpose(data).people) == 1


def test_missing_file_is_a_pose_error(tmp_path):
    with pytest.raises(PoseError, match="Cannot open"):
        load_openpose(tmp_path / "missing.json")


def test_scene_limits():
    with pytest.raises(PoseError):
        PoseScene(32, 512, [])
    with pytest.raises(PoseError):
        Person(np.zeros((18, 2)), np.ones(18, bool), subject=9)
