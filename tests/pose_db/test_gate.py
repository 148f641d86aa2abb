"""The quality gate: each rule rejects what it should, and the report counts it."""

import numpy as np
import pytest

from pose_db.library.gate import RULES, QualityGate, near_duplicate_similarity
from pose_db.library.generate import generate_library
from pose_db.library.rig import body_model, forward_kinematics
from pose_db.library.specs import load_actions
from pose_db.library.staging import photograph, stage_action
from pose_db.scene.geometry import scene_similarity

PROFILES = body_model().profiles
ACTIONS = {a.id: a for a in load_actions()}


def _staged(action_id, profiles=None, **kw):
    action = ACTIONS[action_id]
    profiles = profiles or [PROFILES["adult"]] * action.n_people
    staged = stage_action(action, profiles, **kw)
    return staged, photograph(staged, "front")


def test_a_plausible_entry_passes_every_rule():
    staged, scene = _staged("hug")
    gate = QualityGate()
    assert gate.explain(staged, scene) is None
    assert gate.judge("hug", staged, scene) is None
    assert gate.report.kept == 1 and sum(gate.report.rejected.values()) == 0


def _repose(staged, i, **angles):
    body = staged.bodies[i]
    staged.bodies[i] = forward_kinematics({**body.angles, **angles}, body.profile, root=body.joints["pelvis"])


def test_joint_limits_rule():
    staged, scene = _staged("wave_hello")
    _repose(staged, 0, r_elbow=175.0)
    assert QualityGate().first_failure(staged, scene) == "joint_limits"


def test_proportions_rule():
    long_forearm = PROFILES["adult"].scaled({"forearm": 1.5})
    staged, scene = _staged("wave_hello", [long_forearm])
    assert QualityGate().first_failure(staged, scene) == "proportions"


def test_contacts_rule():
    staged, scene = _staged("handshake")
    staged.contact_miss[0] = 0.2
    assert QualityGate().first_failure(staged, scene) == "contacts"


def test_grounded_rule_floating_and_sinking():
    staged, scene = _staged("wave_hello")
    staged.bodies[0] = staged.bodies[0].moved(np.array([0.0, 0.3, 0.0]))
    assert QualityGate().first_failure(staged, scene) == "grounded"
    staged.bodies[0] = staged.bodies[0].moved(np.array([0.0, -0.6, 0.0]))
    assert QualityGate().first_failure(staged, scene) == "grounded"


def test_interpenetration_rule():
    staged, scene = _staged("handshake")
    shift = staged.bodies[0].joints["pelvis"] - staged.bodies[1].joints["pelvis"]
    staged.bodies[1] = staged.bodies[1].moved(shift)
    assert QualityGate().first_failure(staged, scene) == "interpenetration"


def test_in_canvas_rule():
    staged, scene = _staged("wave_hello")
    scene.people[0].xy[4] = (scene.width + 30, 10)
    assert QualityGate().first_failure(staged, scene) == "in_canvas"
    staged, scene = _staged("wave_hello")
    scene.people[0].visible[[1, 8]] = False  # no neck, no hip: the trunk cannot be read
    assert QualityGate().first_failure(staged, scene) == "in_canvas"


def test_near_duplicates_are_dropped_within_an_action_only():
    staged, scene = _staged("wave_hello")
    gate = QualityGate()
    assert gate.judge("wave_hello", staged, scene) is None
    assert gate.judge("wave_hello", staged, scene.copy()) == "near_duplicate"
    assert gate.judge("other_action", staged, scene.copy()) is None
    assert gate.report.rejected["near_duplicate"] == 1 and gate.report.checked == 3


def test_vectorised_similarity_matches_geometry_scene_similarity():
    entries = list(generate_library(actions=["wave_hello", "hug"], variations=6))
    for entry in entries:
        others = [e.scene for e in entries]
        expected = [scene_similarity(o, entry.scene) if len(o.people) == len(entry.scene.people) else 0.0
                    for o in others]
        np.testing.assert_allclose(near_duplicate_similarity(entry.scene, others), expected, atol=1e-9)


def test_report_counts_every_rule_and_library_entries_pass_the_gate():
    gate = QualityGate()
    entries = list(generate_library(actions=["hug", "shoulder_ride", "sit_cross_legged"], gate=gate))
    report = gate.report
    assert set(report.rejected) == set(RULES)
    assert report.kept == len(entries) and report.checked == report.kept + sum(report.rejected.values())
    assert "near_duplicate" in report.summary()
    # Per-action counts add up to the per-rule counts, and the worst actions come first.
    for rule in RULES:
        assert sum(per.get(rule, 0) for per in report.by_action.values()) == report.rejected[rule]
    worst = report.worst_actions(3)
    assert [total for _, total, _ in worst] == sorted((total for _, total, _ in worst), reverse=True)
    assert worst[0][0] in report.summary(worst=3)
    for entry in entries:
        for p in entry.scene.people:
            assert (p.xy[p.visible] >= 0).all()
            assert (p.xy[p.visible] < [entry.scene.width, entry.scene.height]).all()


@pytest.mark.parametrize("threshold", [0.5, 0.99])
def test_oks_threshold_controls_how_much_is_dropped(threshold):
    gate = QualityGate(oks_threshold=threshold)
    n = len(list(generate_library(actions=["walking"], variations=10, gate=gate)))
    if threshold == 0.5:
        assert gate.report.rejected["near_duplicate"] > 0
    else:
        assert n == 10
