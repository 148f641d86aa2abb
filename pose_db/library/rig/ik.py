"""Two-bone inverse kinematics for arms and legs, answered as joint angles.

Contacts (hand in hand, hand on a shoulder, arms around someone) are solved, not eyeballed:
the wrist or ankle is sent to a world point, the elbow or knee swings towards a pole
direction, and the result is written back as ``raise``/``swing``/``twist``/flexion angles so
the same joint limits judge it as any hand-set pose.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .kinematics import Body3D, cross, limb_frame

# Where an elbow or knee points, by name, in the limb parent's frame (x = the limb's own side
# outwards, mirrored per side): what an author writes as ``elbow: out``.
POLES = {
    "down": (0.0, -1.0, 0.0), "up": (0.0, 1.0, 0.0), "out": (1.0, 0.0, 0.0), "in": (-1.0, 0.0, 0.0),
    "forward": (0.0, 0.0, 1.0), "back": (0.0, 0.0, -1.0),
    "down_out": (0.6, -1.0, -0.2), "down_back": (0.3, -1.0, -0.6), "out_back": (1.0, -0.3, -0.6),
    "out_up": (1.0, 0.6, 0.0), "forward_out": (0.6, 0.0, 1.0), "forward_down": (0.2, -0.6, 1.0),
}
DEFAULT_POLE = {"arm": "down_back", "leg": "forward_out"}
_LIMB_PARTS = {"arm": ("shoulder", "elbow", "wrist", "chest"), "leg": ("hip", "knee", "ankle", "pelvis")}


@dataclass
class LimbSolution:
    """Angles that place a limb's end at a target, and how far short of it the end stays."""

    angles: dict[str, float]
    miss: float  # metres between the reached end and the target (0 when reachable)


def pole_vector(side: str, pole: str | tuple[float, float, float]) -> np.ndarray:
    """A named or explicit pole, with 'out' mirrored to the limb's own side."""
    if isinstance(pole, str):
        if pole not in POLES:
            raise ValueError(f"unknown elbow/knee direction {pole!r}; use one of {', '.join(POLES)}")
        x, y, z = POLES[pole]
        return np.array([-x if side == "r" else x, y, z])
    return np.asarray(pole, dtype=float)


def solve_limb(body: Body3D, side: str, limb: str, target: np.ndarray,
               pole: str | tuple[float, float, float] | None = None) -> LimbSolution:
    """Angles sending ``side``'s wrist (limb="arm") or ankle (limb="leg") to world ``target``.

    Out of reach, the limb points straight at the target and ``miss`` says by how much.
    """
    base_name, _, _, frame_name = _LIMB_PARTS[limb]
    prof = body.profile
    upper, lower = (prof.upper_arm, prof.forearm) if limb == "arm" else (prof.thigh, prof.shin)
    frame = body.frames[frame_name]
    local = frame.T @ (np.asarray(target, dtype=float) - body.joints[f"{side}_{base_name}"])
    dist = float(np.linalg.norm(local))
    reach = float(np.clip(dist, abs(upper - lower) + 1e-4, upper + lower - 1e-6))
    u = local / dist if dist > 1e-9 else np.array([0.0, -1.0, 0.0])
    v = _perpendicular(pole_vector(side, pole or DEFAULT_POLE[limb]), u)
    cos_a = (upper**2 + reach**2 - lower**2) / (2 * upper * reach)
    mid = upper * (cos_a * u + np.sqrt(max(0.0, 1 - cos_a**2)) * v)
    bone = mid / upper
    lower_dir = (u * reach - mid) / lower
    flex = float(np.degrees(np.arccos(np.clip(bone @ lower_dir, -1.0, 1.0))))
    raise_, swing = limb_direction_angles(side, bone, default_swing=body.angles[f"{side}_{limb}_swing"])
    twist = _twist_for_bend(side, limb, raise_, swing, bone, lower_dir,
                            default=body.angles[f"{side}_{limb}_twist"])
    flex_name = f"{side}_{'elbow' if limb == 'arm' else 'knee'}"
    angles = {f"{side}_{limb}_raise": raise_, f"{side}_{limb}_swing": swing,
              f"{side}_{limb}_twist": twist, flex_name: flex}
    return LimbSolution(angles=angles, miss=max(0.0, dist - reach))


def limb_direction_angles(side: str, bone: np.ndarray, default_swing: float = 0.0) -> tuple[float, float]:
    """(raise, swing) of a unit bone direction in its parent's frame; inverse of ``limb_frame``."""
    raise_ = float(np.degrees(np.arccos(np.clip(-bone[1], -1.0, 1.0))))
    horizontal = np.hypot(bone[0], bone[2])
    if horizontal < 1e-6:
        swing = default_swing
    else:
        out = -bone[0] if side == "r" else bone[0]
        swing = float(np.degrees(np.arctan2(bone[2], out)))
    if raise_ > 179.9:  # straight up: swing is arbitrary, keep the author's
        swing = default_swing
    # Arms and legs move across the front of the body, rarely across the back: keep angles there.
    if swing < -150:
        swing += 360
    return raise_, swing


def _twist_for_bend(side: str, limb: str, raise_: float, swing: float, bone: np.ndarray,
                    lower_dir: np.ndarray, default: float) -> float:
    bend = lower_dir - (lower_dir @ bone) * bone
    if np.linalg.norm(bend) < 1e-4:  # straight limb: twist does not show, keep the author's
        return default
    bend /= np.linalg.norm(bend)
    _, bend0 = limb_frame(side, limb, raise_, swing, 0.0)
    angle = float(np.degrees(np.arctan2(cross(bend0, bend) @ bone, bend0 @ bend)))
    return angle if side == "r" else -angle


def _perpendicular(p: np.ndarray, u: np.ndarray) -> np.ndarray:
    v = p - (p @ u) * u
    n = np.linalg.norm(v)
    if n < 1e-6:  # pole along the reach: any perpendicular will do, pick a stable one
        v = cross(u, (1.0, 0.0, 0.0) if abs(u[0]) < 0.9 else (0.0, 0.0, 1.0))
        n = np.linalg.norm(v)
    return v / n
