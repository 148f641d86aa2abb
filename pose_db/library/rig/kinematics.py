"""Forward kinematics: joint angles and a body profile to 3D joint positions.

World frame: x to the right of a camera standing in front, y up, z towards that camera; the
floor is y = 0. A body's own frame has x to the person's left, y up, z forward, so a person
with ``body_yaw = 0`` faces the front camera.

The chain is pelvis -> two spine segments (the bend is shared between them so the back curves)
-> neck -> head, with the arms hung from the chest and the legs from the pelvis. A limb is
aimed by ``raise``/``swing`` (a swing-then-raise from hanging down) and ``twist`` about its own
axis; the elbow or knee bends in the plane that twist selects.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .skeleton3d import SIDES, BodyProfile, body_model

DOWN = np.array([0.0, -1.0, 0.0])
# The direction a bent elbow/knee sends the forearm/shin when the limb hangs untwisted.
REST_BEND = {"arm": np.array([0.0, 0.0, 1.0]), "leg": np.array([0.0, 0.0, -1.0])}
_ADULT_TORSO = 0.52
_SHOULDER_DROP = 0.03  # shoulders sit a little below the neck point


def rotation(axis: np.ndarray, degrees: float) -> np.ndarray:
    """3x3 rotation about ``axis`` by ``degrees`` (right-handed, Rodrigues)."""
    x, y, z = (float(v) for v in axis)
    n = math.sqrt(x * x + y * y + z * z)
    if n < 1e-12 or degrees == 0:
        return np.eye(3)
    x, y, z = x / n, y / n, z / n
    a = math.radians(degrees)
    c, s = math.cos(a), math.sin(a)
    t = 1 - c
    return np.array([
        [t * x * x + c, t * x * y - s * z, t * x * z + s * y],
        [t * x * y + s * z, t * y * y + c, t * y * z - s * x],
        [t * x * z - s * y, t * y * z + s * x, t * z * z + c],
    ])


def cross(a, b) -> np.ndarray:
    """Cross product of two 3-vectors (numpy's general one is slow for a single pair)."""
    return np.array([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]])


def rx(deg: float) -> np.ndarray:
    return rotation((1, 0, 0), deg)


def ry(deg: float) -> np.ndarray:
    return rotation((0, 1, 0), deg)


def rz(deg: float) -> np.ndarray:
    return rotation((0, 0, 1), deg)


def orientation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Body-frame rotation: lean (pitch forward, roll to the left) then turn (yaw to the left)."""
    return ry(yaw) @ rx(pitch) @ rz(-roll)


def swing_direction(side: str, swing: float) -> np.ndarray:
    """Horizontal unit vector a limb swings towards: 0 = out to its own side, 90 = forward."""
    out = -1.0 if side == "r" else 1.0
    s = math.radians(swing)
    return np.array([out * math.cos(s), 0.0, math.sin(s)])


def limb_frame(side: str, limb: str, raise_: float, swing: float, twist: float) -> tuple[np.ndarray, np.ndarray]:
    """(direction of the upper bone, direction a bend sends the lower bone), both unit vectors
    in the parent's frame. The bend direction is perpendicular to the bone."""
    h = swing_direction(side, swing)
    lift = rotation(cross(DOWN, h), raise_)
    bone = lift @ DOWN
    sign = 1.0 if side == "r" else -1.0  # + twist is outward on both sides
    rest = REST_BEND[limb]
    if limb == "leg":
        # A hip flexes first and then opens sideways: a thigh raised forward-and-out keeps its
        # knee bending downwards (as when sitting cross-legged), not back towards the buttock.
        # Blended in with the raise, so a hanging leg's knee still bends straight back.
        opening = (swing - 90.0) * min(1.0, raise_ / 45.0)
        rest = rotation(DOWN, -sign * opening) @ rest
    bend = rotation(bone, sign * twist) @ (lift @ rest)
    return bone, bend


@dataclass
class Body3D:
    """A posed body: world positions of ``JOINTS_3D`` and the frames landmarks hang from."""

    joints: dict[str, np.ndarray]
    frames: dict[str, np.ndarray]  # pelvis, chest, head, heading (yaw only): 3x3 world rotations
    profile: BodyProfile
    angles: dict[str, float]

    def moved(self, delta: np.ndarray) -> Body3D:
        """The same pose translated by ``delta`` (cheaper than posing it again)."""
        return Body3D({k: v + delta for k, v in self.joints.items()}, self.frames, self.profile, self.angles)

    def array(self, names: tuple[str, ...]) -> np.ndarray:
        return np.stack([self.joints[n] for n in names])

    def landmark(self, name: str, offset: tuple[float, float, float] | None = None) -> np.ndarray:
        """World position of a joint or a named body landmark (``body.yaml``), plus an offset
        in the landmark's frame (a joint's offset is in the chest frame, the pelvis frame for
        hips, and for knees and ankles the body's heading on the floor). Offsets are metres on
        an adult and shrink or grow with the body, so one spec fits a child and a tall man."""
        model = body_model()
        extra = np.zeros(3) if offset is None else np.asarray(offset, dtype=float)
        if name in self.joints and name not in model.landmarks:
            # Feet are placed relative to the floor (the body's heading), not its leaning pelvis.
            frame = ("heading" if "knee" in name or "ankle" in name
                     else "pelvis" if name == "pelvis" or "hip" in name else "chest")
            return self.joints[name] + self.frames[frame] @ (self.scale * extra)
        try:
            mark = model.landmarks[name]
        except KeyError:
            known = sorted(set(self.joints) | set(model.landmarks))
            raise KeyError(f"unknown body point {name!r}; use one of {', '.join(known)}") from None
        unit = self.profile.head if mark.frame == "head" else self.scale
        return self.joints[mark.joint] + self.frames[mark.frame] @ (unit * (mark.at + extra))

    @property
    def scale(self) -> float:
        """Body size relative to the adult profile (by torso length)."""
        return self.profile.torso / _ADULT_TORSO


def forward_kinematics(angles: dict[str, float], profile: BodyProfile,
                       root: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> Body3D:
    """Pose a body: ``angles`` (all DOFs of ``body_model()``, degrees) with the pelvis at ``root``."""
    model = body_model()
    a = angles
    pelvis = np.asarray(root, dtype=float)
    r_pelvis = orientation(a["body_yaw"], a["body_pitch"], a["body_roll"])
    half = ry(a["spine_twist"] / 2) @ rx(a["spine_bend"] / 2) @ rz(-a["spine_side"] / 2)
    r_spine = r_pelvis @ half
    r_chest = r_spine @ half
    spine = pelvis + r_spine @ np.array([0.0, 0.45 * profile.torso, 0.0])
    neck = spine + r_chest @ np.array([0.0, 0.55 * profile.torso, 0.0])
    r_head = r_chest @ ry(a["head_turn"]) @ rx(a["head_nod"]) @ rz(-a["head_tilt"])
    head = neck + r_chest @ (model.head["pivot"] * profile.head)
    joints = {"pelvis": pelvis, "spine": spine, "neck": neck, "head": head}
    joints["nose"] = head + r_head @ (model.head["nose"] * profile.head)
    for side in SIDES:
        mx = np.array([-1.0 if side == "r" else 1.0, 1.0, 1.0])
        joints[f"{side}_eye"] = head + r_head @ (mx * model.head["eye"] * profile.head)
        joints[f"{side}_ear"] = head + r_head @ (mx * model.head["ear"] * profile.head)
        shoulder = neck + r_chest @ (mx * np.array([profile.shoulder, -_SHOULDER_DROP * profile.torso / _ADULT_TORSO, 0.0]))
        hip = pelvis + r_pelvis @ (mx * np.array([profile.hip, 0.0, 0.0]))
        for limb, base, frame, upper, lower, names in (
            ("arm", shoulder, r_chest, profile.upper_arm, profile.forearm, ("shoulder", "elbow", "wrist")),
            ("leg", hip, r_pelvis, profile.thigh, profile.shin, ("hip", "knee", "ankle")),
        ):
            flex = a[f"{side}_{'elbow' if limb == 'arm' else 'knee'}"]
            bone, bend = limb_frame(side, limb, a[f"{side}_{limb}_raise"], a[f"{side}_{limb}_swing"],
                                    a[f"{side}_{limb}_twist"])
            f = math.radians(flex)
            lower_dir = math.cos(f) * bone + math.sin(f) * bend
            mid = base + frame @ (upper * bone)
            joints[f"{side}_{names[0]}"] = base
            joints[f"{side}_{names[1]}"] = mid
            joints[f"{side}_{names[2]}"] = mid + frame @ (lower * lower_dir)
    frames = {"pelvis": r_pelvis, "chest": r_chest, "head": r_head, "heading": ry(a["body_yaw"])}
    return Body3D(joints=joints, frames=frames,
                  profile=profile, angles=dict(angles))
