"""The Assign panel's warnings and colours, and the Subjects panel's colour and upload rules
(issue 16, defects 1, 3 and 5), without a browser."""

from __future__ import annotations

import gradio as gr
import pytest

from pose_db.scene.skeleton import SUBJECT_COLORS
from ui.panels.assignment import colour_disc, risks, unmentioned
from ui.panels.subjects import CardValues, check_upload, remove_card
from ui.subjects import free_colour


class _Person:
    def __init__(self, subject):
        self.subject = subject


def test_colour_discs_match_the_default_subject_colours():
    assert [colour_disc(c) for c in SUBJECT_COLORS[:4]] == ["🔴", "🔵", "🟢", "🟡"]
    assert colour_disc("not a colour") == "●"


def test_unmentioned_names_are_whole_words_any_case():
    assert unmentioned("mia and LEO shaking hands", ["Mia", "Leo", "Max"]) == ["Max"]
    assert unmentioned("Miami at night", ["Mia"]) == ["Mia"]


def test_two_people_on_one_subject_while_another_has_none():
    people = [_Person(0), _Person(0)]
    [warning] = risks(people, ["Mia", "Leo"], "Mia and Leo")
    assert "Mia is bound to more than one person while Leo has none" in warning
    assert risks([_Person(0), _Person(0)], ["Mia"], "Mia twice") == []


def test_a_new_card_never_takes_a_live_colour():
    # Leo (red) removed above Mia (blue): Mia keeps blue and the freed card is not blue.
    cards = CardValues(count=2, images=["leo.png", "mia.png", None, None],
                       names=["Leo", "Mia", "", ""], colours=list(SUBJECT_COLORS[:4]))
    updates = remove_card(cards, 0)
    colours = updates[1 + 4 + 4 + 4: 1 + 4 + 4 + 4 + 4]
    assert colours[0] == SUBJECT_COLORS[1]
    assert SUBJECT_COLORS[1] not in colours[1:]
    assert free_colour([SUBJECT_COLORS[1]]) == SUBJECT_COLORS[0]


def test_a_damaged_upload_is_refused_with_a_sentence(tmp_path):
    bad = tmp_path / "x.png"
    bad.write_bytes(b"\x00" * 500)
    with pytest.warns(UserWarning, match="not an image"):
        assert check_upload({"path": str(bad)}, 0) is None
    good = tmp_path / "ok.png"
    from PIL import Image

    Image.new("RGB", (8, 8)).save(good)
    assert isinstance(check_upload({"path": str(good)}, 0), type(gr.skip()))


def test_fit_pose_scales_evenly_and_centres():
    from ui.canvas_fit import fit_note, fit_pose

    pose = {"canvas_width": 512, "canvas_height": 768,
            "people": [{"pose_keypoints_2d": [256, 384, 1, 0, 0, 0] + [10, 20, 1] * 16}]}
    fitted = fit_pose(pose, 256, 256)
    assert (fitted["canvas_width"], fitted["canvas_height"]) == (256, 256)
    flat = fitted["people"][0]["pose_keypoints_2d"]
    assert flat[:6] == [128, 128, 1, 0, 0, 0]  # the centre stays central; hidden stays hidden
    assert fit_pose(fitted, 256, 256) is fitted and fit_note(fitted, 256, 256) is None
    assert "fitted inside the 256×256" in fit_note(pose, 256, 256)
