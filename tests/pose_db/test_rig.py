"""The 3D body rig: forward/inverse kinematics, joint limits, profiles and camera views."""

import numpy as np
import pytest

from pose_db.library.rig import body_model, forward_kinematics, mirror_angles, neutral_angles, solve_limb
from pose_db.library.rig.camera import VIEW_NAMES, camera_for_view, keypoints_in_view
from pose_db.library.specs import load_actions
from pose_db.library.staging import _jittered, photograph, stage_action
from pose_db.scene.skeleton import KEYPOINT_INDEX, MIRROR_INDEX

ADULT = body_model().profiles["adult"]
_LIMB_JOINTS = {"arm": ("shoulder", "elbow", "wrist", "chest"), "leg": ("hip", "knee", "ankle", "pelvis")}


def _random_angles(rng):
    angles = neutral_angles()
    for name, spec in body_model().dofs.items():
        lo, hi = max(spec.low, -120), min(spec.high, 150)
        angles[name] = float(rng.uniform(lo, hi))
    return angles


@pytest.mark.parametrize("seed", range(5))
def test_fk_ik_round_trip(seed):
    """IK of a pose's own wrists/ankles, with its own elbows/knees as poles, gives the pose back."""
    rng = np.random.default_rng(seed)
    for _ in range(20):
        angles = _random_angles(rng)
        body = forward_kinematics(angles, ADULT)
        for side in "rl":
            for limb, (base, mid, end, frame) in _LIMB_JOINTS.items():
                pole = body.frames[frame].T @ (body.joints[f"{side}_{mid}"] - body.joints[f"{side}_{base}"])
                solution = solve_limb(body, side, limb, body.joints[f"{side}_{end}"], tuple(pole))
                assert solution.miss < 1e-6
                again = forward_kinematics({**angles, **solution.angles}, ADULT)
                for joint in (mid, end):
                    np.testing.assert_allclose(again.joints[f"{side}_{joint}"], body.joints[f"{side}_{joint}"], atol=2e-3)


def test_ik_reaches_a_point_and_reports_what_it_cannot_reach():
    body = forward_kinematics(neutral_angles(), ADULT)
    shoulder = body.joints["r_shoulder"]
    target = shoulder + np.array([-0.2, 0.1, 0.3])
    solution = solve_limb(body, "r", "arm", target, "down")
    moved = forward_kinematics({**body.angles, **solution.angles}, ADULT)
    np.testing.assert_allclose(moved.joints["r_wrist"], target, atol=1e-6)
    far = shoulder + np.array([0.0, 0.0, 1.0])
    assert solve_limb(body, "r", "arm", far).miss == pytest.approx(1.0 - ADULT.upper_arm - ADULT.forearm, abs=1e-3)


def test_elbow_pole_decides_where_the_elbow_points():
    body = forward_kinematics(neutral_angles(), ADULT)
    target = body.joints["r_shoulder"] + np.array([0.0, -0.1, 0.35])
    for pole, axis, sign in (("out", 0, -1), ("down", 1, -1)):  # right arm: out is -x
        sol = solve_limb(body, "r", "arm", target, pole)
        elbow = forward_kinematics({**body.angles, **sol.angles}, ADULT).joints["r_elbow"]
        straight = (body.joints["r_shoulder"] + target) / 2
        assert sign * (elbow[axis] - straight[axis]) > 0.05


def test_joint_limits_are_reported_and_jitter_stays_inside_them():
    model = body_model()
    angles = neutral_angles()
    assert model.violations(angles) == []
    bad = {**angles, "r_elbow": 175.0, "l_leg_raise": 120.0, "l_leg_swing": -90.0}
    problems = model.violations(bad)
    assert any("r_elbow" in p for p in problems) and any("l_leg_raise" in p for p in problems)
    huge = {name: 500.0 for name in model.dof_names}
    jittered = _jittered(angles, huge)
    assert model.violations(jittered) == []


def test_mirror_angles_is_an_involution_and_mirrors_the_body():
    rng = np.random.default_rng(3)
    angles = _random_angles(rng)
    assert mirror_angles(mirror_angles(angles)) == angles
    body = forward_kinematics(angles, ADULT)
    twin = forward_kinematics(mirror_angles(angles), ADULT)
    flip = np.array([-1.0, 1.0, 1.0])
    for name, pos in body.joints.items():
        other = ("l_" + name[2:]) if name.startswith("r_") else ("r_" + name[2:]) if name.startswith("l_") else name
        np.testing.assert_allclose(twin.joints[other], pos * flip, atol=1e-9)


@pytest.mark.parametrize("view", VIEW_NAMES)
def test_views_are_mirror_symmetric(view):
    """A mirrored action seen from the mirrored side is the mirror image of the original."""
    action = {a.id: a for a in load_actions()}["wave_hello"]
    scene = photograph(stage_action(action, [ADULT]), view, side=1)
    mirrored = photograph(stage_action(action, [ADULT], mirror=True), view, side=-1)
    a, b = scene.people[0], mirrored.people[0]
    assert (scene.width, scene.height) == (mirrored.width, mirrored.height)
    np.testing.assert_array_equal(a.visible, b.visible[list(MIRROR_INDEX)])
    flipped = b.xy[list(MIRROR_INDEX)] * [-1, 1] + [scene.width, 0]
    np.testing.assert_allclose(a.xy[a.visible], flipped[a.visible], atol=1e-6)


def test_back_view_hides_the_face_and_a_profile_hides_the_far_eye():
    body = forward_kinematics(neutral_angles(), ADULT)
    i = KEYPOINT_INDEX
    _, front = keypoints_in_view(body, camera_for_view([body], "front"))
    assert front[[i["nose"], i["r_eye"], i["l_eye"], i["r_ear"], i["l_ear"]]].all()
    _, back = keypoints_in_view(body, camera_for_view([body], "back"))
    assert not back[[i["nose"], i["r_eye"], i["l_eye"]]].any() and back[[i["r_ear"], i["l_ear"]]].all()
    _, side = keypoints_in_view(body, camera_for_view([body], "side"))  # camera at the person's left
    assert side[i["l_eye"]] and not side[i["r_eye"]] and not side[i["r_ear"]]


def test_front_view_puts_the_persons_right_on_the_viewers_left():
    action = {a.id: a for a in load_actions()}["wave_hello"]
    person = photograph(stage_action(action, [ADULT]), "front").people[0]
    i = KEYPOINT_INDEX
    assert person.xy[i["r_shoulder"], 0] < person.xy[i["l_shoulder"], 0]
    assert person.xy[i["r_wrist"], 1] < person.xy[i["r_shoulder"], 1]  # the waving hand is up


def test_a_waist_up_shot_hides_the_legs_that_leave_the_frame():
    action = {a.id: a for a in load_actions()}["wave_hello"]
    scene = photograph(stage_action(action, [ADULT]), "front", framing="medium")
    person = scene.people[0]
    i = KEYPOINT_INDEX
    assert not person.visible[[i["r_knee"], i["l_knee"], i["r_ankle"], i["l_ankle"]]].any()
    assert person.visible[[i["neck"], i["r_hip"], i["l_hip"]]].all()
    assert (person.xy[person.visible] <= [scene.width, scene.height]).all()


def test_profiles_have_plausible_proportions_and_sizes():
    from pose_db.library.gate import proportion_problems

    profiles = body_model().profiles
    assert {"child", "teen", "adult", "tall", "stocky"} <= set(profiles)
    for profile in profiles.values():
        assert proportion_problems(forward_kinematics(neutral_angles(), profile)) == []
    heights = {name: p.height for name, p in profiles.items()}
    assert heights["toddler"] < heights["child"] < heights["teen"] < heights["adult"] < heights["tall"]
    assert 1.6 < heights["adult"] < 1.85


def test_people_lying_on_the_floor_are_photographed_from_above_eye_level():
    """A lying body seen from eye level is a flat line; every view but low_angle looks down on it."""
    lying = forward_kinematics({**neutral_angles(), "body_pitch": -90.0, "body_yaw": 90.0}, ADULT)
    lying = lying.moved(np.array([0.0, 0.1 - lying.joints["pelvis"][1], 0.0]))
    standing = forward_kinematics(neutral_angles(), ADULT)
    for view in ("front", "side", "three_quarter", "back"):
        cam = camera_for_view([lying], view)
        elevation = np.degrees(np.arcsin((cam.position - cam.target)[1] / np.linalg.norm(cam.position - cam.target)))
        assert elevation > 25
        cam = camera_for_view([standing], view)
        assert (cam.position - cam.target)[1] / np.linalg.norm(cam.position - cam.target) < np.sin(np.radians(20))
    low = camera_for_view([lying], "low_angle")
    assert low.position[1] < 1.0
