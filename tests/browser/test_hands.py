"""Hands in the skeleton editor, in real Chromium: add an open hand at a wrist, zoom into hand
mode, drag a finger joint, undo, leave with Esc, export the JSON with the hand in it, mirror,
and the pose-map PNG drawn like pose_db's render with hands."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pose_db.scene.openpose_io import read_openpose
from pose_db.scene.render import render_pose_map
from pose_db.scene.skeleton import HAND_KEYPOINT_NAMES, KEYPOINT_INDEX
from tests.browser.test_pose_editor import python_value, set_two_people, shot, wait_python
from tests.helpers.browser import EDITOR, TIMEOUT_MS, drag, kp, open_editor, screen

R_WRIST, L_WRIST = KEYPOINT_INDEX["r_wrist"], KEYPOINT_INDEX["l_wrist"]
RIGHT, LEFT = "hand_right_keypoints_2d", "hand_left_keypoints_2d"
INDEX_TIP = HAND_KEYPOINT_NAMES.index("index_4")
browser = pytest.mark.browser


def hand_point(value, person, key, i):
    return value["people"][person][key][3 * i: 3 * i + 3]


def hand_screen(page, person, key, i):
    return page.evaluate(f"(() => {{ const v = {EDITOR}.getValue().people[{person}][{json.dumps(key)}]; "
                         f"return {EDITOR}.toScreen(v[{3 * i}], v[{3 * i + 1}]); }})()")


@browser
def test_add_a_hand_edit_a_finger_in_hand_mode_undo_and_export(chromium, editor_url, shots):
    page = open_editor(chromium, editor_url)
    set_two_people(page)
    assert page.is_disabled("#pose-editor [data-action=addHand]")       # no wrist selected yet
    page.mouse.click(*screen(page, 0, R_WRIST))
    assert page.is_enabled("#pose-editor [data-action=addHand]")
    assert page.is_disabled("#pose-editor [data-action=editHand]")
    page.click("#pose-editor [data-action=addHand]")
    with_hand = wait_python(page, lambda v: RIGHT in v["people"][0], "the added hand")
    hand = np.reshape(with_hand["people"][0][RIGHT], (21, 3))
    assert (hand[:, 2] == 1).all()
    assert hand[0, :2] == pytest.approx(kp(with_hand, 0, R_WRIST)[:2], abs=0.02)   # at the wrist
    assert LEFT not in with_hand["people"][0] and RIGHT not in with_hand["people"][1]
    # the arm hangs down: the fingers point down, away from the elbow
    assert hand[12, 1] > hand[0, 1] + 15
    shot(page, shots, "hands_added.png")

    # Hand mode: the view zooms to the hand; a finger joint becomes a handle.
    zoom_before = page.evaluate(f"{EDITOR}.view.zoom")
    page.click("#pose-editor [data-action=editHand]")
    page.wait_for_function(f"{EDITOR}.hand() !== null", timeout=TIMEOUT_MS)
    assert page.evaluate(f"{EDITOR}.view.zoom") > 3 * zoom_before
    assert "Editing the right hand of person 1" in page.inner_text("#pose-editor .pe-status")
    tip = hand_screen(page, 0, RIGHT, INDEX_TIP)
    s = page.evaluate(f"(() => {{ const a = {EDITOR}.toScreen(0, 0), b = {EDITOR}.toScreen(100, 0); "
                      "return (b[0] - a[0]) / 100; })()")
    drag(page, tip, (tip[0] + 60, tip[1] - 40))
    moved = wait_python(page, lambda v: hand_point(v, 0, RIGHT, INDEX_TIP) != hand_point(with_hand, 0, RIGHT, INDEX_TIP),
                        "the finger drag")
    dx, dy, c = np.subtract(hand_point(moved, 0, RIGHT, INDEX_TIP), hand_point(with_hand, 0, RIGHT, INDEX_TIP))
    assert (dx, dy) == pytest.approx((60 / s, -40 / s), abs=0.5) and c == 0
    others = [i for i in range(21) if i != INDEX_TIP]
    assert np.allclose(np.reshape(moved["people"][0][RIGHT], (21, 3))[others], hand[others], atol=0.011)
    assert moved["people"][0]["pose_keypoints_2d"] == with_hand["people"][0]["pose_keypoints_2d"]
    assert "index 4" in page.inner_text("#pose-editor .pe-status")
    shot(page, shots, "hands_hand_mode.png")

    # Undo takes the finger back (and stays in hand mode); redo brings the edit again.
    page.keyboard.press("Control+z")
    wait_python(page, lambda v: hand_point(v, 0, RIGHT, INDEX_TIP) == hand_point(with_hand, 0, RIGHT, INDEX_TIP), "undo")
    assert page.evaluate(f"{EDITOR}.hand() !== null")
    page.keyboard.press("Control+Shift+z")
    wait_python(page, lambda v: hand_point(v, 0, RIGHT, INDEX_TIP) == hand_point(moved, 0, RIGHT, INDEX_TIP), "redo")

    # Esc returns to the whole canvas, as it was.
    page.keyboard.press("Escape")
    page.wait_for_function(f"{EDITOR}.hand() === null", timeout=TIMEOUT_MS)
    assert page.evaluate(f"{EDITOR}.view.zoom") == pytest.approx(zoom_before)

    # The JSON export carries the hand; pose_db reads it back.
    with page.expect_download() as download:
        page.click("#pose-editor [data-action=exportJSON]")
    exported = json.loads(Path(download.value.path()).read_text())
    assert len(exported["people"][0][RIGHT]) == 63 and exported == python_value(page)
    assert read_openpose(exported).people[0].hands[RIGHT][INDEX_TIP, :2] == pytest.approx(
        hand_point(moved, 0, RIGHT, INDEX_TIP)[:2], abs=0.011)

    # The PNG has the hand, drawn like pose_db's render with hands (openpose_full).
    with page.expect_download() as download:
        page.click("#pose-editor [data-action=exportPNG]")
    from PIL import Image

    png = np.asarray(Image.open(download.value.path()).convert("RGB"), dtype=np.int16)
    scene = read_openpose(exported)
    ref, body = render_pose_map(scene, hands=True).astype(np.int16), render_pose_map(scene).astype(np.int16)
    hand_px = (ref != body).any(axis=2)
    assert hand_px.sum() > 200
    drawn = png.max(axis=2) > 30
    assert drawn[hand_px].mean() > 0.8, "the exported PNG lacks the hand"
    assert not page.errors, page.errors


@browser
def test_wrist_drag_carries_the_hand_mirror_swaps_it_delete_removes_it(chromium, editor_url, shots):
    page = open_editor(chromium, editor_url)
    set_two_people(page)
    page.mouse.click(*screen(page, 1, L_WRIST))
    page.click("#pose-editor [data-action=addHand]")
    value = wait_python(page, lambda v: LEFT in v["people"][1], "the left hand")
    start = screen(page, 1, L_WRIST)
    drag(page, start, (start[0] + 30, start[1] - 50))
    moved = wait_python(page, lambda v: kp(v, 1, L_WRIST) != kp(value, 1, L_WRIST), "the wrist drag")
    shift = np.subtract(kp(moved, 1, L_WRIST)[:2], kp(value, 1, L_WRIST)[:2])
    before, after = (np.reshape(v["people"][1][LEFT], (21, 3))[:, :2] for v in (value, moved))
    assert np.allclose(after - before, shift, atol=0.02)              # the whole hand came along

    page.keyboard.press("m")                                          # mirror: the left hand becomes the right
    mirrored = wait_python(page, lambda v: RIGHT in v["people"][1] and LEFT not in v["people"][1], "mirror")
    assert mirrored["people"][1][RIGHT][:2] == pytest.approx(
        [kp(mirrored, 1, R_WRIST)[0], kp(mirrored, 1, R_WRIST)[1]], abs=0.02)
    shot(page, shots, "hands_mirrored.png")

    page.mouse.click(*screen(page, 1, R_WRIST))
    page.click("#pose-editor [data-action=removeHand]")
    wait_python(page, lambda v: RIGHT not in v["people"][1] and LEFT not in v["people"][1], "delete hand")
    page.keyboard.press("Control+z")
    wait_python(page, lambda v: RIGHT in v["people"][1], "undo delete hand")

    # Without a wrist selected the hand buttons say what to do.
    page.mouse.click(*screen(page, 1, KEYPOINT_INDEX["nose"]))
    page.keyboard.press("e")
    page.wait_for_function("document.querySelector('#pose-editor .pe-status').innerText.includes('Select a wrist')")
    assert not page.errors, page.errors


@browser
def test_import_keeps_hands_scales_normalised_ones_and_refuses_broken_ones(chromium, editor_url, tmp_path, shots):
    from ui.pose_editor_demo import _two_people

    page = open_editor(chromium, editor_url)
    person = _two_people()["people"][0]
    body = np.reshape(person["pose_keypoints_2d"], (18, 3))
    wx, wy = body[R_WRIST, :2]
    hand = [[wx, wy, 1.0]] + [[wx - 4 * (f - 2), wy + 6 * k, 0.9] for f in range(5) for k in range(1, 5)]
    flat_body = [v / 512 if i % 3 < 2 else v for i, v in enumerate(person["pose_keypoints_2d"])]
    flat_hand = [v / 512 if i % 3 < 2 else v for i, v in enumerate(np.ravel(hand).tolist())]
    source = tmp_path / "hands.json"
    source.write_text(json.dumps({"people": [{"pose_keypoints_2d": flat_body, RIGHT: flat_hand, LEFT: [0] * 63}]}))
    page.set_input_files("#pose-editor input[type=file][accept*=json]", str(source))
    value = wait_python(page, lambda v: v and RIGHT in v["people"][0], "the import")
    assert LEFT not in value["people"][0]                               # all zeros: no hand
    assert np.allclose(np.reshape(value["people"][0][RIGHT], (21, 3)), hand, atol=0.011)   # back in pixels
    shot(page, shots, "hands_imported.png")

    bad = tmp_path / "bad_hand.json"
    bad.write_text(json.dumps({"people": [{"pose_keypoints_2d": person["pose_keypoints_2d"], RIGHT: [1.0] * 60}]}))
    page.set_input_files("#pose-editor input[type=file][accept*=json]", str(bad))
    page.wait_for_function("document.querySelector('#pose-editor .pe-status').innerText.includes('needs 63 numbers')")
    assert python_value(page) == value
    assert not page.errors, page.errors
