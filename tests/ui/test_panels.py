"""The studio's pure helpers: assignment edits, settings checks, requests, subject cards."""

from __future__ import annotations

import gradio as gr
import pytest
from PIL import Image

from pose_db.scene.model import Person, PoseScene
from pose_db.scene.openpose_io import write_openpose
from ui.assignment import UNASSIGNED, assign, assign_in_order, drop_subject, remap_subjects
from ui.config import Limits, Presets, StudioConfig, load_examples
from ui.generation import Settings, check_settings, make_request, pick_seed
from ui.panels.assignment import panel_updates
from ui.subjects import Subject, read_subjects


def _scene(n: int = 3) -> dict:
    people = [Person.from_points({0: (50 + 60 * i, 40), 1: (50 + 60 * i, 80)}) for i in range(n)]
    return write_openpose(PoseScene(256, 256, people))


def _subjects(pose: dict) -> list:
    return [p.get("subject") for p in pose["people"]]


def test_assign_and_unassign():
    pose = assign(_scene(), 1, 0)
    assert _subjects(pose) == [None, 0, None]
    assert _subjects(assign(pose, 1, UNASSIGNED)) == [None, None, None]
    assert assign(pose, 7, 0) == pose  # no such person: unchanged
    assert assign(None, 0, 0) is None


def test_assign_in_order_stops_at_subject_count():
    assert _subjects(assign_in_order(_scene(), 2)) == [0, 1, None]


def test_drop_subject_shifts_later_assignments():
    pose = assign_in_order(_scene(), 3)
    assert _subjects(drop_subject(pose, 1, 3)) == [0, None, 1]
    assert _subjects(remap_subjects(pose, {2: 0})) == [None, None, 0]


def test_panel_updates_show_one_dropdown_per_person():
    updates = panel_updates(assign(_scene(2), 1, 1), ["Mia", "Leo"])
    shown = [u for u in updates[:-2] if u.get("visible")]
    assert len(shown) == 2
    assert shown[1]["value"] == 1 and shown[0]["value"] == UNASSIGNED
    assert ("● Leo", 1) in shown[0]["choices"]
    assert "1 unassigned" in updates[-1]


def test_invalid_canvas_pose_is_a_clear_error():
    with pytest.raises(gr.Error, match="canvas is invalid"):
        assign({"people": "nope"}, 0, 0)


def test_settings_snap_and_limits():
    limits = Limits.load()
    settings = check_settings(Settings(1000, 530, 20, 3.5, 1, 1.0), limits)
    assert (settings.width, settings.height) == (992, 528)
    for bad, words in [(Settings(8, 512, 20, 3.5, 1, 1.0), "Width"),
                       (Settings(512, 512, 0, 3.5, 1, 1.0), "Steps"),
                       (Settings(512, 512, 20, 99, 1, 1.0), "Guidance"),
                       (Settings(512, 512, 20, 3.5, 1, -1), "Binding")]:
        with pytest.raises(gr.Error, match=words):
            check_settings(bad, limits)


def test_pick_seed():
    assert pick_seed(42, False) == 42
    assert len({pick_seed(42, True) for _ in range(5)}) > 1  # Randomise ignores the field
    assert 0 <= pick_seed(-1, False) < 2**31


def test_make_request_remaps_cards_to_subjects():
    image = Image.new("RGB", (16, 16))
    pose = assign_in_order(_scene(2), 2)  # person 0 → card 0, person 1 → card 1
    subjects = [Subject(image, "Leo")]  # card 0 had no image; card 1 became subject 0
    request = make_request("Leo waves", subjects, {1: 0}, pose,
                           Settings(256, 256, 4, 3.5, 7, 1.0))
    assert [p.get("subject") for p in request.pose["people"]] == [None, 0]
    assert request.subject_names == ["Leo"] and request.seed == 7


def test_make_request_refuses_binding_to_missing_subject():
    pose = assign(_scene(1), 0, 2)
    with pytest.raises(gr.Error, match="no image"):
        make_request("x", [], None, pose, Settings(256, 256, 4, 3.5, 7, 1.0))


def test_empty_canvas_means_text_only():
    request = make_request("x", [], None, write_openpose(PoseScene(256, 256, [])),
                           Settings(256, 256, 4, 3.5, 7, 1.0))
    assert request.pose is None


def test_read_subjects(tmp_path):
    limits = Limits.load()
    path = tmp_path / "a.png"
    Image.new("RGBA", (20, 20), (255, 0, 0, 255)).save(path)
    subjects, mapping = read_subjects([None, str(path), str(path), None],
                                      ["", " Mia ", "", ""], limits)
    assert [s.name for s in subjects] == ["Mia", "Subject 3"]
    assert mapping == {1: 0, 2: 1}
    assert subjects[0].image.mode == "RGB"
    with pytest.raises(gr.Error, match="(?i)named “mia”"):
        read_subjects([str(path), str(path)], ["Mia", "mia"], limits)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(gr.Error, match="not an image"):
        read_subjects([str(bad)], ["Mia"], limits)


def test_presets_and_examples_are_data():
    presets = Presets.load()
    assert all(p.width % 16 == 0 and p.height % 16 == 0 for p in presets.sizes)
    for defaults in presets.defaults.values():
        presets.size(defaults.size)  # every default names a real preset
    examples = load_examples()
    assert examples and all(Image.open(path).size for e in examples for path, _ in e.subjects)
    assert StudioConfig(zero_gpu=True).defaults_for("real").steps < \
        StudioConfig().defaults_for("real").steps


def test_replaces_edit_tells_an_edit_from_the_refit_placed_pose():
    from ui.canvas_fit import fit_pose
    from ui.panels.retrieval import replaces_edit

    person = Person.from_points({0: (100, 200), 1: (100, 260), 4: (140, 300)})
    placed = write_openpose(PoseScene(512, 768, [person]))
    on_canvas = fit_pose(placed, 256, 256)  # the lock refit it: not an edit
    assert not replaces_edit(on_canvas, placed)
    assert not replaces_edit(None, placed) and not replaces_edit({"people": []}, None)
    edited = fit_pose(placed, 256, 256)
    edited["people"][0]["pose_keypoints_2d"][12] += 5.0
    assert replaces_edit(edited, placed)
    assert replaces_edit(on_canvas, None)  # drawn by hand, never retrieved
    edited["people"].append(edited["people"][0])
    assert replaces_edit(edited, placed)


def test_variation_count_is_checked():
    """Variations: the count is checked server-side too (a page edited by hand), with a sentence."""
    from ui.events import variation_count

    limits = Limits.load()
    assert variation_count(None, limits) == 1
    assert variation_count(3.0, limits) == 3
    assert variation_count(limits.max_variations, limits) == limits.max_variations
    for bad in (0, limits.max_variations + 1, 2.5, "many", float("nan")):
        with pytest.raises(gr.Error, match="Variations must be a whole number from 1 to"):
            variation_count(bad, limits)
