"""The gate's readability rule: a correct 3D pose whose 2D pose map no longer shows it is refused."""

from __future__ import annotations

import pytest

from pose_db.library.gate import QualityGate
from pose_db.library.readability import hidden_parts, pose_lost, readability_problems, silhouette_overlap
from pose_db.library.rig.camera import view_specs
from pose_db.library.rig.skeleton3d import body_model
from pose_db.library.specs import load_actions
from pose_db.library.staging import photograph, stage_action


@pytest.fixture(scope="module")
def staged():
    actions = {a.id: a for a in load_actions()}
    adult = body_model().profiles["adult"]
    return lambda action_id: stage_action(actions[action_id], [adult] * actions[action_id].n_people)


def _lost(staged_action, view):
    scene = photograph(staged_action, view)
    return [pose_lost(hidden_parts(b, p)) for b, p in zip(staged_action.bodies, scene.people, strict=True)]


def test_sitting_reads_from_the_side_not_from_the_front(staged):
    sitting = staged("sit_chair")
    assert _lost(sitting, "front") == [["thighs"]]  # thighs point at the camera: drawn as stubs
    assert _lost(sitting, "side") == [[]] and _lost(sitting, "three_quarter") == [[]]
    assert readability_problems(sitting, photograph(sitting, "front"))
    assert not readability_problems(sitting, photograph(sitting, "side"))


def test_a_bow_seen_from_the_front_is_drawn_upright(staged):
    bow = staged("bow")
    assert _lost(bow, "front") == [["torso"]]
    assert _lost(bow, "side") == [[]]


def test_one_leg_in_its_true_shape_keeps_a_pose_readable(staged):
    # one-knee kneeling from the front: the front thigh and the kneeling shin (the only tilted
    # ones) point along the line of sight, so the kneel reads as standing
    kneeling = staged("kneel_one_knee")
    assert _lost(kneeling, "front") == [["thighs", "shins"]] and _lost(kneeling, "side") == [[]]
    assert pose_lost({"r_thigh": True, "l_thigh": False}) == []
    assert pose_lost({"r_thigh": True, "l_thigh": True, "r_shin": False}) == ["thighs"]
    assert pose_lost({"torso": True}) == ["torso"] and pose_lost({}) == []


def test_standing_poses_are_never_hidden(staged):
    for action_id in ("hands_on_hips", "clapping"):
        for view in view_specs():
            assert _lost(staged(action_id), view) == [[]], (action_id, view)


def test_a_hug_seen_side_on_merges_into_one_silhouette(staged):
    hug = staged("hug")
    side = silhouette_overlap(photograph(hug, "side"))
    front = silhouette_overlap(photograph(hug, "three_quarter"))
    assert len(side) == 2 and min(side) > 0.8 and max(front) < 0.3
    assert any("overlap" in p for p in readability_problems(hug, photograph(hug, "side")))
    assert not readability_problems(hug, photograph(hug, "three_quarter"))


def test_an_action_that_overlaps_from_every_side_keeps_its_best_view(staged):
    behind = staged("hug_from_behind")
    overlaps = {v: max(silhouette_overlap(photograph(behind, v))) for v in view_specs()}
    best = min(overlaps, key=overlaps.get)
    assert not readability_problems(behind, photograph(behind, best))
    assert readability_problems(behind, photograph(behind, "front"))  # much worse than the best view


def test_a_group_is_measured_against_everyone_else_at_once():
    from pose_db.scene.model import Person, PoseScene
    from pose_db.scene.skeleton import KEYPOINT_INDEX as K

    def person(x):  # a straight-standing stick figure centred at x
        points = {"nose": (x, 40), "neck": (x, 60), "r_hip": (x - 8, 140), "l_hip": (x + 8, 140),
                  "r_knee": (x - 8, 200), "l_knee": (x + 8, 200), "r_ankle": (x - 8, 260), "l_ankle": (x + 8, 260)}
        return Person.from_points({K[k]: v for k, v in points.items()})

    assert silhouette_overlap(PoseScene(512, 512, [person(100)])) == []
    apart = silhouette_overlap(PoseScene(512, 512, [person(100), person(300)]))
    assert apart == [0.0, 0.0]
    # the middle one of three is covered half from each side: more than from either neighbour alone
    trio = silhouette_overlap(PoseScene(512, 512, [person(200), person(222), person(244)]))
    pair = silhouette_overlap(PoseScene(512, 512, [person(200), person(222)]))
    assert trio[1] > pair[1] > 0


def test_the_gate_counts_readability_rejections(staged):
    gate = QualityGate()
    sitting = staged("sit_chair")
    assert gate.judge("sit_chair", sitting, photograph(sitting, "front")) == "readability"
    assert gate.judge("sit_chair", sitting, photograph(sitting, "side")) is None
    assert gate.report.rejected["readability"] == 1 and gate.report.by_action["sit_chair"] == {"readability": 1}
