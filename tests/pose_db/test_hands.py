"""Hands (OpenPose's 21-point hand_left/right_keypoints_2d): reading, writing, transforms, and
pose maps drawn exactly like controlnet_aux's draw_handpose."""

import json

import numpy as np
import pytest

from pose_db.scene.model import Person, PoseError, PoseScene
from pose_db.scene.openpose_io import read_openpose, write_openpose
from pose_db.scene.render import main, render_pose_map
from pose_db.scene.skeleton import HAND_KEYS, HAND_LIMBS, KEYPOINT_INDEX, NUM_HAND_KEYPOINTS
from pose_db.scene.transforms import fit_scene, mirror, rotate, scale, translate
from tests.helpers.poses import standing_person

LEFT, RIGHT = "hand_left_keypoints_2d", "hand_right_keypoints_2d"


def _hand_at(wrist, spread=1.0, hidden=()) -> np.ndarray:
    """A fan of five fingers above ``wrist``: 21 [x, y, c] rows, ``hidden`` indices at c = 0."""
    x0, y0 = wrist
    rows = [[x0, y0, 1.0]]
    for f in range(5):
        angle = np.deg2rad(-60 + 30 * f) * spread
        for k in range(1, 5):
            r = 9.0 * k
            rows.append([x0 + r * np.sin(angle), y0 - r * np.cos(angle), 0.8])
    hand = np.array(rows)
    for i in hidden:
        hand[i] = 0.0
    return hand


def _person_with_hands(x=256, top=80, height=380, **kw) -> Person:
    p = standing_person(x, top, height, wave=True)
    p.extras[RIGHT] = _hand_at(p.xy[KEYPOINT_INDEX["r_wrist"]], **kw)
    p.extras[LEFT] = _hand_at(p.xy[KEYPOINT_INDEX["l_wrist"]], spread=0.6)
    return Person(p.xy, p.visible, p.subject, p.extras)


# ---- reading and writing ------------------------------------------------------------------------


def test_hands_round_trip_with_hidden_points_written_as_zeros():
    p = _person_with_hands(hidden=(8, 12))
    p.extras[RIGHT][8, :2] = (123.0, 45.0)          # a hidden point keeps a place in memory
    data = write_openpose(PoseScene(512, 512, [p]))
    right = data["people"][0][RIGHT]
    assert len(right) == 63 and right[24:27] == [0.0, 0.0, 0.0] and right[36:39] == [0.0, 0.0, 0.0]
    back = read_openpose(json.dumps(data))
    assert set(back.people[0].hands) == {LEFT, RIGHT}
    assert write_openpose(back) == data
    np.testing.assert_allclose(back.people[0].hands[LEFT], p.extras[LEFT])


def test_body_only_files_read_and_write_exactly_as_before():
    data = write_openpose(PoseScene(512, 512, [standing_person(200, 100)]))
    assert set(data["people"][0]) == {"pose_keypoints_2d"}
    assert write_openpose(read_openpose(data)) == data
    assert read_openpose(data).people[0].hands == {}


def test_normalised_hands_are_scaled_with_the_body():
    p = _person_with_hands()
    data = write_openpose(PoseScene(512, 512, [p]))
    person = data["people"][0]
    for key in ("pose_keypoints_2d", LEFT, RIGHT):
        person[key] = [v / 512 if i % 3 < 2 else v for i, v in enumerate(person[key])]
    back = read_openpose(data).people[0]
    np.testing.assert_allclose(back.hands[RIGHT][:, :2], p.extras[RIGHT][:, :2], atol=1e-9)


def test_an_all_zero_hand_is_no_hand():
    data = write_openpose(PoseScene(512, 512, [standing_person(200, 100)]))
    data["people"][0][RIGHT] = [0.0] * 63         # OpenPose's "hand not detected"
    assert read_openpose(data).people[0].hands == {}


def _with_hand(values):
    data = write_openpose(PoseScene(512, 512, [standing_person(200, 100)]))
    data["people"][0][LEFT] = values
    return data


@pytest.mark.parametrize("values, words", [
    ([10.0, 20.0, 1.0] * 20, "needs 21 x 3 = 63 numbers"),
    ([10.0, 20.0, -1.0] * 21, "0 (missing) or positive"),
    ([10.0, "a", 1.0] * 21, "only numbers"),
    ([10.0, 9e9, 1.0] * 21, "far outside"),
    ([10.0, 20.0] * 20, "[x, y, c] triples"),
])
def test_bad_hands_are_refused_with_a_sentence(values, words):
    with pytest.raises(PoseError) as err:
        read_openpose(_with_hand(values))
    assert words in str(err.value)


def test_person_checks_a_hand_it_is_given():
    p = standing_person(200, 100)
    with pytest.raises(PoseError, match="needs 21"):
        Person(p.xy, p.visible, None, {RIGHT: np.zeros((20, 3))})
    with pytest.raises(PoseError, match="non-finite"):
        Person(p.xy, p.visible, None, {RIGHT: np.full((21, 3), np.nan)})


# ---- transforms ---------------------------------------------------------------------------------


def test_mirror_swaps_the_hands_and_reflects_them():
    p = _person_with_hands()
    m = mirror(p, axis_x=256)
    np.testing.assert_allclose(m.hands[LEFT][:, 0], 512 - p.extras[RIGHT][:, 0])
    np.testing.assert_allclose(m.hands[RIGHT][:, 1], p.extras[LEFT][:, 1])
    # the mirrored left hand hangs from the mirrored left wrist
    np.testing.assert_allclose(m.hands[LEFT][0, :2], m.xy[KEYPOINT_INDEX["l_wrist"]])
    twice = mirror(m, axis_x=256)
    for key in (LEFT, RIGHT):
        np.testing.assert_allclose(twice.hands[key], p.extras[key], atol=1e-9)


def test_translate_scale_rotate_carry_the_hands_with_the_wrists():
    p = _person_with_hands()
    for moved in (translate(p, 30, -12), scale(p, 0.5), rotate(p, 33), fit_scene(PoseScene(512, 512, [p]), 1024, 768).people[0]):
        for key, (wrist, _) in HAND_KEYS.items():
            np.testing.assert_allclose(moved.hands[key][0, :2], moved.xy[KEYPOINT_INDEX[wrist]], atol=1e-9)
        # distances inside the hand scale with the body
        ratio = np.linalg.norm(moved.xy[2] - moved.xy[5]) / np.linalg.norm(p.xy[2] - p.xy[5])
        d_new = np.linalg.norm(moved.hands[RIGHT][12, :2] - moved.hands[RIGHT][0, :2])
        d_old = np.linalg.norm(p.extras[RIGHT][12, :2] - p.extras[RIGHT][0, :2])
        assert d_new == pytest.approx(ratio * d_old)
    np.testing.assert_array_equal(rotate(p, 33).hands[RIGHT][:, 2], p.extras[RIGHT][:, 2])


# ---- pose maps ------------------------------------------------------------------------------------

util = pytest.importorskip("controlnet_aux.open_pose.util")
body = pytest.importorskip("controlnet_aux.open_pose.body")
pytest.importorskip("matplotlib")  # draw_handpose needs it and controlnet_aux does not declare it


def _reference(scene: PoseScene) -> np.ndarray:
    """controlnet_aux's draw_bodypose, then draw_handpose left and right, per person (its
    draw_poses order), over the same points (normalised; hidden body joints None). Hidden hand
    points go in as (0, 0): the reference skips points on the canvas edge."""
    canvas = np.zeros((scene.height, scene.width, 3), dtype=np.uint8)
    for person in scene.people:
        canvas = util.draw_bodypose(canvas, [
            body.Keypoint(x / scene.width, y / scene.height) if vis else None
            for (x, y), vis in zip(person.xy.tolist(), person.visible.tolist())])
        for key in (LEFT, RIGHT):
            hand = person.extras.get(key)
            if hand is not None:
                canvas = util.draw_handpose(canvas, [
                    body.Keypoint(x / scene.width, y / scene.height) if c > 0 else body.Keypoint(0, 0)
                    for x, y, c in hand.tolist()])
    return canvas


HAND_SCENES = {
    "one person, two hands": lambda: PoseScene(512, 512, [_person_with_hands()]),
    "hidden finger joints": lambda: PoseScene(512, 512, [_person_with_hands(hidden=(4, 7, 8, 20))]),
    "two people, rotated": lambda: PoseScene(512, 512, [rotate(_person_with_hands(150, 90, 300), 25),
                                                        _person_with_hands(380, 60, 340, spread=1.3)]),
}


@pytest.mark.parametrize("name", sorted(HAND_SCENES))
def test_hands_pixel_parity_with_draw_handpose(name):
    scene = HAND_SCENES[name]()
    ours, theirs = render_pose_map(scene, hands=True), _reference(scene)
    hand_pixels = (theirs != _reference(PoseScene(512, 512, [Person(p.xy, p.visible) for p in scene.people]))).any(axis=2)
    assert hand_pixels.sum() > 500                       # the hands really are drawn
    differing = (ours != theirs).any(axis=2)
    assert differing.mean() <= 0.002, f"{differing.mean():.2%} of pixels differ"
    assert differing[hand_pixels].mean() <= 0.005         # measured: 0 on all three scenes


def test_hands_are_left_out_unless_asked_for():
    scene = HAND_SCENES["one person, two hands"]()
    body_only = PoseScene(512, 512, [Person(p.xy, p.visible) for p in scene.people])
    np.testing.assert_array_equal(render_pose_map(scene), render_pose_map(body_only))
    assert (render_pose_map(scene, hands=True) != render_pose_map(body_only)).any()


def test_a_hidden_finger_edge_is_not_drawn():
    scene = PoseScene(512, 512, [_person_with_hands(hidden=(11, 12))])
    hand = scene.people[0].extras[RIGHT]
    (xa, ya), (xb, yb) = hand[10, :2], _hand_at(scene.people[0].xy[KEYPOINT_INDEX["r_wrist"]])[12, :2]
    full = render_pose_map(PoseScene(512, 512, [_person_with_hands()]), hands=True)
    cut = render_pose_map(scene, hands=True)
    x, y = int((xa + xb) / 2), int((ya + yb) / 2)
    assert full[y - 1:y + 2, x - 1:x + 2].any() and not cut[y - 1:y + 2, x - 1:x + 2].any()
    assert len(HAND_LIMBS) == 20 and NUM_HAND_KEYPOINTS == 21


def test_render_cli_draws_hands_on_request(tmp_path):
    path = tmp_path / "pose.json"
    path.write_text(json.dumps(write_openpose(PoseScene(512, 512, [_person_with_hands()]))))
    assert main([str(path), str(tmp_path / "body.png")]) == 0
    assert main([str(path), str(tmp_path / "hands.png"), "--hands"]) == 0
    from PIL import Image

    a, b = (np.asarray(Image.open(tmp_path / n)) for n in ("body.png", "hands.png"))
    assert (a != b).any(axis=2).sum() > 500
