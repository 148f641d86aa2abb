"""The 3D body the pose library is posed with: degrees of freedom, their limits, bone profiles.

A body pose is a dict of named joint angles in degrees (``"r_elbow": 90``) plus where the body
stands. The names, limits and per-angle jitter live in ``body.yaml`` next to this module, so an
anatomist can review them without reading code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import yaml

_DATA = Path(__file__).with_name("body.yaml")
SIDES = ("r", "l")
LIMB_DOFS = {"arm": ("raise", "swing", "twist"), "leg": ("raise", "swing", "twist")}
# Joint names of the posed 3D body, BODY-18 names plus the pelvis and the mid spine.
JOINTS_3D = (
    "pelvis", "spine", "neck", "head", "nose", "r_eye", "l_eye", "r_ear", "l_ear",
    "r_shoulder", "r_elbow", "r_wrist", "l_shoulder", "l_elbow", "l_wrist",
    "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle",
)


@dataclass(frozen=True)
class DofSpec:
    """One degree of freedom: its allowed range and how much the library may jitter it."""

    name: str
    low: float
    high: float
    jitter: float


@dataclass(frozen=True)
class BodyProfile:
    """Bone lengths of one body type, in metres (``body.yaml`` documents each)."""

    name: str
    torso: float
    hip: float
    shoulder: float
    upper_arm: float
    forearm: float
    thigh: float
    shin: float
    ankle: float
    head: float

    def scaled(self, factors: dict[str, float]) -> BodyProfile:
        """The profile with some lengths multiplied (per-variation body jitter)."""
        values = {k: getattr(self, k) * factors.get(k, 1.0) for k in _LENGTHS}
        return BodyProfile(self.name, **values)

    @property
    def height(self) -> float:
        """Standing height, sole to crown (approximate: the crown is above the nose)."""
        return self.ankle + self.shin + self.thigh + self.torso + 0.31 * self.head


_LENGTHS = ("torso", "hip", "shoulder", "upper_arm", "forearm", "thigh", "shin", "ankle", "head")


@dataclass(frozen=True)
class Landmark:
    """A named body point: ``joint`` plus ``at`` (metres, adult) in the ``frame`` of the body."""

    joint: str
    frame: str
    at: np.ndarray


@dataclass(frozen=True)
class BodyModel:
    """Everything in ``body.yaml``: DOF specs (per full name), profiles, proportions, head."""

    dofs: dict[str, DofSpec]
    profiles: dict[str, BodyProfile]
    proportions: tuple[tuple[str, str, float, float], ...]
    head: dict[str, np.ndarray]
    head_radius: float
    leg_raise_by_swing: np.ndarray
    arm_raise_by_swing: np.ndarray
    landmarks: dict[str, Landmark]
    dof_names: tuple[str, ...] = field(default=())

    def max_raise(self, limb: str, swing: float) -> float:
        """The most a limb may be raised towards ``swing`` (hips and shoulders are not balls)."""
        table = self.leg_raise_by_swing if limb == "leg" else self.arm_raise_by_swing
        return float(np.interp(swing, table[:, 0], table[:, 1]))

    def violations(self, angles: dict[str, float], tolerance: float = 0.5) -> list[str]:
        """Human-readable list of angles outside their limits (empty when the pose is legal)."""
        bad = []
        for name, value in angles.items():
            spec = self.dofs[name]
            if name.startswith("body_"):
                continue
            if not spec.low - tolerance <= value <= spec.high + tolerance:
                bad.append(f"{name}={value:.0f} outside [{spec.low:.0f}, {spec.high:.0f}]")
        for side in SIDES:
            for limb in LIMB_DOFS:
                raise_, swing = angles.get(f"{side}_{limb}_raise", 0.0), angles.get(f"{side}_{limb}_swing", 90.0)
                top = self.max_raise(limb, swing)
                if raise_ > top + tolerance:
                    bad.append(f"{side}_{limb}_raise={raise_:.0f} exceeds {top:.0f} for swing {swing:.0f}")
        return bad


def _full_dof_names(generic: dict) -> tuple[str, ...]:
    names = []
    for key in generic:
        if key.split("_")[0] in ("arm", "leg") or key in ("elbow", "knee"):
            names += [f"{side}_{key}" for side in SIDES]
        else:
            names.append(key)
    return tuple(names)


@lru_cache(maxsize=1)
def body_model() -> BodyModel:
    """The body model from ``body.yaml`` (read once)."""
    data = yaml.safe_load(_DATA.read_text())
    generic = data["dofs"]
    dofs = {}
    for full in _full_dof_names(generic):
        key = full[2:] if full[:2] in ("r_", "l_") else full
        lo, hi = generic[key]["limits"]
        dofs[full] = DofSpec(full, float(lo), float(hi), float(generic[key]["jitter"]))
    profiles = {name: BodyProfile(name, **{k: float(v[k]) for k in _LENGTHS}) for name, v in data["profiles"].items()}
    head = {k: np.asarray(v, dtype=float) for k, v in data["head"].items() if k != "radius"}
    return BodyModel(
        dofs=dofs, profiles=profiles,
        proportions=tuple(tuple(p) for p in data["proportions"]),
        head=head, head_radius=float(data["head"]["radius"]),
        leg_raise_by_swing=np.asarray(data["leg_raise_by_swing"], dtype=float),
        arm_raise_by_swing=np.asarray(data["arm_raise_by_swing"], dtype=float),
        landmarks={name: Landmark(v["joint"], v["frame"], np.asarray(v["at"], dtype=float))
                   for name, v in data["landmarks"].items()},
        dof_names=tuple(dofs),
    )


def neutral_angles() -> dict[str, float]:
    """Standing straight, arms hanging, limbs raised 'forwards' by zero degrees."""
    angles = {name: 0.0 for name in body_model().dof_names}
    for side in SIDES:
        angles[f"{side}_arm_swing"] = 0.0
        angles[f"{side}_leg_swing"] = 90.0
    return angles


def mirror_angles(angles: dict[str, float]) -> dict[str, float]:
    """The left-right mirror image of a pose: sides swap, turns and sideways bends flip sign."""
    out = {}
    for name, value in angles.items():
        if name[:2] in ("r_", "l_"):
            out[("l_" if name[0] == "r" else "r_") + name[2:]] = value
        elif name in ("body_yaw", "body_roll", "spine_side", "spine_twist", "head_turn", "head_tilt"):
            out[name] = -value
        else:
            out[name] = value
    return out
