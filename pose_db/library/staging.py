"""Staging: from an action spec to posed 3D people, and from them to a BODY-18 pose scene.

Each person takes the action's angles (plus a variation's jitter), stands where the spec puts
them (on the floor, or on another person), and then the contacts are solved with two-bone IK
in the order the spec lists them. A camera view then photographs the group.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pose_db.scene.model import PoseScene

from .rig.camera import camera_for_view, frame_people, keypoints_in_view
from .rig.ik import solve_limb
from .rig.kinematics import Body3D, forward_kinematics, limb_frame
from .rig.skeleton3d import BodyProfile, body_model, mirror_angles
from .specs import ActionSpec, ContactSpec, PersonSpec, _swap_side

_ADULT_TORSO = 0.52
# How far above the floor a joint's centre sits when that part of the body rests on it (adult,
# metres; ankles use the profile's own ankle height).
_REST_HEIGHT = {"pelvis": 0.09, "spine": 0.10, "neck": 0.08, "head": 0.10, "hip": 0.09, "knee": 0.05,
                "shoulder": 0.06, "elbow": 0.04, "wrist": 0.03, "nose": 0.03, "eye": 0.04, "ear": 0.05}
# Metres a body part other than the supports may sink into the floor (flesh, clothes).
_SOFT_TISSUE = 0.03
# Settling onto several supports: the most a body tilts, and the unevenness it leaves alone.
_SETTLE_MAX = 10.0
_SETTLE_TOLERANCE = 0.015


@dataclass
class StagedAction:
    """The posed 3D people of one variation, with what the quality gate needs to judge them."""

    bodies: list[Body3D]
    people: tuple[PersonSpec, ...]  # as staged (mirrored when the variation is)
    contact_miss: list[float]       # metres short of each contact's target


def rest_height(joint: str, profile: BodyProfile) -> float:
    """Height of a joint's centre above the floor when it rests on the floor."""
    if joint.endswith("ankle"):
        return profile.ankle
    key = joint[2:] if joint[:2] in ("r_", "l_") else joint
    return _REST_HEIGHT.get(key, 0.08) * profile.torso / _ADULT_TORSO


def stage_action(action: ActionSpec, profiles: list[BodyProfile], jitter: list[dict[str, float]] | None = None,
                 mirror: bool = False) -> StagedAction:
    """Pose every person of ``action`` and solve its contacts.

    Args:
        action: the spec.
        profiles: one body profile per person.
        jitter: per person, degrees added to named angles (a variation's small differences).
        mirror: stage the left-right mirror image of the action (whole scene).
    """
    people = tuple(_mirrored_person(p) for p in action.people) if mirror else action.people
    contacts = tuple(_mirrored_contact(c) for c in action.contacts) if mirror else action.contacts
    angles = []
    for i, person in enumerate(people):
        a = _jittered(person.angles, jitter[i] if jitter else {})
        a["body_yaw"] = a["body_yaw"] + person.facing
        angles.append(a)
    # Spacing is written for adults; a pair of children stands closer together.
    spacing = float(np.mean([p.torso for p in profiles])) / _ADULT_TORSO
    bodies: list[Body3D | None] = [None] * len(people)
    for i in _placement_order(people):
        bodies[i] = _place(people[i], angles[i], profiles[i], bodies, spacing)
    misses = []
    for contact in contacts:
        mover = bodies[contact.who]
        target = bodies[contact.target].landmark(contact.point, contact.offset)
        solution = solve_limb(mover, contact.side, contact.limb, target, contact.pole)
        new_angles = dict(mover.angles)
        new_angles.update(solution.angles)
        bodies[contact.who] = forward_kinematics(new_angles, mover.profile, root=mover.joints["pelvis"])
        misses.append(solution.miss)
    # A person whose contacts are all their own (a foot set into a stance, a hand on the hip)
    # is grounded again: IK may have moved a support. Others keep their place so that contacts
    # between people stay reached.
    touched_by_others = {c.target for c in contacts if c.target != c.who} | {c.who for c in contacts if c.target != c.who}
    for i in {c.who for c in contacts} - touched_by_others:
        if people[i].on is None and people[i].ground != "none":
            bodies[i] = bodies[i].moved(np.array([0.0, -_drop(people[i], bodies[i]), 0.0]))
    return StagedAction(bodies=bodies, people=people, contact_miss=misses)


def photograph(staged: StagedAction, view: str, side: int = 1, view_jitter: tuple[float, float] = (0.0, 0.0),
               framing: str = "full") -> PoseScene:
    """The BODY-18 scene a camera at ``view`` sees; ``framing="medium"`` crops at mid-thigh."""
    camera = camera_for_view(staged.bodies, view, side=side, jitter=view_jitter)
    points = [keypoints_in_view(b, camera) for b in staged.bodies]
    head_tops = camera.project(np.stack([b.landmark("head_top") for b in staged.bodies]))
    crop = None
    if framing == "medium":
        hips = camera.project(staged.bodies[0].array(("r_hip", "l_hip", "r_knee", "l_knee")))
        hip_y, knee_y = hips[:2, 1].mean(), hips[2:, 1].mean()
        crop = float(hip_y + 0.45 * (knee_y - hip_y))
    return frame_people(points, head_tops, crop_below=crop)


def _jittered(angles: dict[str, float], jitter: dict[str, float]) -> dict[str, float]:
    """Angles plus jitter, kept within the joint limits (an angle the author set outside them
    stays outside, so the gate still reports the spec)."""
    model = body_model()
    out = dict(angles)
    for name, delta in jitter.items():
        spec = model.dofs[name]
        value = angles[name]
        lo, hi = min(spec.low, value), max(spec.high, value)
        if name.endswith("_raise"):
            limb = "arm" if "_arm_" in name else "leg"
            hi = max(min(hi, model.max_raise(limb, angles[name.replace("raise", "swing")])), value)
        out[name] = float(min(max(value + delta, lo), hi))
    return out


def _placement_order(people: tuple[PersonSpec, ...]) -> list[int]:
    """People standing on the floor first, then those placed on someone already posed."""
    order, placed = [], set()
    while len(order) < len(people):
        progress = False
        for i, p in enumerate(people):
            if i not in placed and (p.on is None or p.on[0] in placed):
                order.append(i)
                placed.add(i)
                progress = True
        if not progress:
            raise ValueError("people are placed on each other in a circle; one of them must stand on the floor")
    return order


def _place(person: PersonSpec, angles: dict[str, float], profile: BodyProfile, bodies: list,
           spacing: float) -> Body3D:
    if person.on is not None:
        carrier = bodies[person.on[0]]
        root = carrier.landmark(person.on[1], person.offset)
        return forward_kinematics(angles, profile, root=tuple(root))
    body = forward_kinematics(angles, profile)
    if person.ground == "feet" and len(person.support) >= 2 and all(j.endswith("ankle") for j in person.support):
        body = _plant_feet(body, person.support)
    elif person.ground != "none" and len(person.support) >= 2:
        body = _settle(body, person.support)
    if person.ground == "none":
        drop = 0.0
    else:
        drop = _drop(person, body)
    return body.moved(np.array([spacing * person.at[0], -drop, spacing * person.at[1]]))


def _mirrored_person(p: PersonSpec) -> PersonSpec:
    on = (p.on[0], _swap_side(p.on[1])) if p.on else None
    return PersonSpec(
        angles=mirror_angles(p.angles), at=(-p.at[0], p.at[1]), facing=-p.facing, ground=p.ground,
        support=tuple(_swap_side(j) for j in p.support), lift=p.lift, on=on,
        offset=(-p.offset[0], p.offset[1], p.offset[2]),
    )


def _mirrored_contact(c: ContactSpec) -> ContactSpec:
    return ContactSpec(who=c.who, limb=c.limb, side="l" if c.side == "r" else "r", target=c.target,
                       point=_swap_side(c.point), offset=(-c.offset[0], c.offset[1], c.offset[2]), pole=c.pole)


def _drop(person: PersonSpec, body: Body3D) -> float:
    """How far to lower ``body`` so that it meets the floor the way ``person`` says."""
    gaps = {j: body.joints[j][1] - rest_height(j, body.profile) for j in body.joints}
    if person.ground == "feet" and person.support:
        drop = min(gaps[j] for j in person.support)
    elif person.support:
        # Lying or floor sitting: the supports touch the floor, and any other part may press
        # into it by the soft tissue a real body has (rest heights are approximations).
        drop = min(min(gaps[j] for j in person.support), min(gaps.values()) + _SOFT_TISSUE)
    else:
        drop = min(gaps.values())
    return drop - person.lift


def _support_gaps(body: Body3D, support: tuple[str, ...]) -> np.ndarray:
    return np.array([body.joints[j][1] - rest_height(j, body.profile) for j in support])


def _settle(body: Body3D, support: tuple[str, ...]) -> Body3D:
    """Tilt the whole body (``body_pitch``/``body_roll``, at most ``_SETTLE_MAX`` degrees) so
    that all its supports meet the floor together, as a real body settles onto hands and feet.
    Jitter and other body sizes otherwise leave a hand or a knee hovering. Gauss-Newton on a
    finite-difference Jacobian: a few forward-kinematics calls, only when a support is off."""
    for _ in range(2):
        gaps = _support_gaps(body, support)
        residual = gaps - gaps.mean()
        if np.abs(residual).max() < _SETTLE_TOLERANCE:
            break
        columns = []
        for name in ("body_pitch", "body_roll"):
            probe = dict(body.angles)
            probe[name] += 1.0
            moved = _support_gaps(forward_kinematics(probe, body.profile, root=body.joints["pelvis"]), support)
            columns.append((moved - moved.mean()) - residual)
        step, *_ = np.linalg.lstsq(np.stack(columns, axis=1), -residual, rcond=None)
        step = np.clip(step, -_SETTLE_MAX, _SETTLE_MAX)
        settled = dict(body.angles)
        settled["body_pitch"] += float(step[0])
        settled["body_roll"] += float(step[1])
        candidate = forward_kinematics(settled, body.profile, root=body.joints["pelvis"])
        after = _support_gaps(candidate, support)
        if np.ptp(after) >= np.ptp(gaps):
            break
        body = candidate
    return body


def _plant_feet(body: Body3D, support: tuple[str, ...]) -> Body3D:
    """Standing on both feet: the lower foot is lifted to the other's height by bending its
    knee (leg IK, the knee keeping its direction), so jitter never leaves a foot hovering and
    the body stays upright instead of tilting onto both feet like a plank."""
    gaps = {j: body.joints[j][1] - rest_height(j, body.profile) for j in support}
    top = max(gaps.values())
    angles = dict(body.angles)
    moved = False
    for joint, gap in gaps.items():
        if top - gap < _SETTLE_TOLERANCE / 3:
            continue
        side = joint[0]
        # The knee keeps pointing where it points (opposite to where its bend sends the shin),
        # which is defined even for a straight leg.
        _, bend = limb_frame(side, "leg", angles[f"{side}_leg_raise"], angles[f"{side}_leg_swing"],
                             angles[f"{side}_leg_twist"])
        target = body.joints[joint] + np.array([0.0, top - gap, 0.0])
        solution = solve_limb(body, side, "leg", target, tuple(-bend))
        trial = {**angles, **solution.angles}
        if solution.miss > 1e-3 or body_model().violations(trial):
            return _settle(body, support)  # the leg cannot plant within its limits: tilt instead
        angles = trial
        moved = True
    return forward_kinematics(angles, body.profile, root=body.joints["pelvis"]) if moved else body
