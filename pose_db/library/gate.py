"""The quality gate every library entry passes: the synthetic stand-in for ASTRA's VLM curation.

Rules, in the order they are applied (the first that fails rejects the entry and is counted):

- ``joint_limits``: every angle (after jitter and IK) inside the limits of ``rig/body.yaml``.
- ``proportions``: bone-length ratios of each posed body plausible for a human.
- ``contacts``: every IK contact reached (within ``contact_tolerance`` metres).
- ``grounded``: the joints an action stands on touch the floor, and nothing sinks below it.
- ``interpenetration``: no two people's torsos, heads or thighs overlap.
- ``in_canvas``: every visible keypoint inside the canvas, each person's trunk visible and
  large enough to read.
- ``readability``: the 2D pose map still shows the pose: no part that carries it hidden along
  the line of sight, no two people merged into one silhouette (``readability.py``).
- ``near_duplicate``: OKS > ``oks_threshold`` with an entry already kept for the same action.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from itertools import permutations

import numpy as np

from pose_db.scene.model import PoseScene
from pose_db.scene.skeleton import KEYPOINT_INDEX, KEYPOINT_NAMES, OKS_SIGMAS

from .readability import readability_problems
from .rig.kinematics import Body3D
from .rig.skeleton3d import body_model
from .staging import StagedAction, rest_height

RULES = ("joint_limits", "proportions", "contacts", "grounded", "interpenetration", "in_canvas", "readability",
         "near_duplicate")
_ADULT_TORSO = 0.52
# Capsule radii (adult metres) used to detect two bodies passing through each other. They are
# a little thinner than real bodies so that people touching (a hug) do not count.
_TORSO_R, _HEAD_R, _THIGH_R = 0.085, 0.08, 0.045
_SIGMAS = np.array([OKS_SIGMAS.get(name, np.nan) for name in KEYPOINT_NAMES])
_TRUNK = ("neck", "r_shoulder", "l_shoulder", "r_hip", "l_hip")
_LEGS = ("r_knee", "l_knee", "r_ankle", "l_ankle")


@dataclass
class GateReport:
    """How many candidates were checked, kept, and rejected by each rule."""

    checked: int = 0
    kept: int = 0
    rejected: dict[str, int] = field(default_factory=lambda: {rule: 0 for rule in RULES})
    short_actions: dict[str, int] = field(default_factory=dict)  # action -> entries it got when short
    by_action: dict[str, dict[str, int]] = field(default_factory=dict)  # action -> rule -> rejections

    def count(self, action_id: str, rule: str) -> None:
        self.rejected[rule] += 1
        per = self.by_action.setdefault(action_id, {})
        per[rule] = per.get(rule, 0) + 1

    def worst_actions(self, n: int = 10) -> list[tuple[str, int, dict[str, int]]]:
        """The ``n`` actions with the most rejected candidates: (action, total, by rule)."""
        ranked = sorted(self.by_action.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
        return [(a, sum(rules.values()), rules) for a, rules in ranked[:n]]

    def summary(self, worst: int = 0) -> str:
        lines = [f"quality gate: {self.checked} candidates, {self.kept} kept"]
        lines += [f"  {rule:<17} rejected {n}" for rule, n in self.rejected.items()]
        if worst:
            lines.append(f"  most rejected actions (of {len(self.by_action)} with any rejection):")
            lines += [f"    {a:<28} {total:3d}  {rules}" for a, total, rules in self.worst_actions(worst)]
        if self.short_actions:
            lines.append(f"  actions short of their target: {self.short_actions}")
        return "\n".join(lines)


class QualityGate:
    """Judges candidates one by one and remembers the kept ones for de-duplication.

    Args:
        oks_threshold: drop a candidate this similar (OKS) to a kept entry of its action.
        contact_tolerance: metres an IK contact may fall short.
        floor_tolerance: metres a support may float above / any joint sink below the floor.
    """

    def __init__(self, oks_threshold: float = 0.95, contact_tolerance: float = 0.03,
                 floor_tolerance: float = 0.06):
        self.oks_threshold = oks_threshold
        self.contact_tolerance = contact_tolerance
        self.floor_tolerance = floor_tolerance
        self.report = GateReport()
        self._kept: dict[str, list[PoseScene]] = defaultdict(list)

    def judge(self, action_id: str, staged: StagedAction, scene: PoseScene, framing: str = "full") -> str | None:
        """The first rule the candidate breaks (counted), or None when it is kept."""
        self.report.checked += 1
        rule = self.first_failure(staged, scene, framing) or self._duplicate(action_id, scene)
        if rule:
            self.report.count(action_id, rule)
            return rule
        self._kept[action_id].append(scene)
        self.report.kept += 1
        return None

    def first_failure(self, staged: StagedAction, scene: PoseScene, framing: str = "full") -> str | None:
        """The first geometric rule broken (no de-duplication), or None."""
        found = self.explain(staged, scene, framing)
        return found[0] if found else None

    def explain(self, staged: StagedAction, scene: PoseScene, framing: str = "full") -> tuple[str, list[str]] | None:
        """(rule, problems) for the first geometric rule broken, or None: what an author reads."""
        checks = (
            ("joint_limits", lambda: [f"person {i}: {p}" for i, b in enumerate(staged.bodies)
                                      for p in joint_limit_problems(b)]),
            ("proportions", lambda: [f"person {i}: {p}" for i, b in enumerate(staged.bodies)
                                     for p in proportion_problems(b)]),
            ("contacts", lambda: [f"contact {k} misses by {m:.2f} m" for k, m in enumerate(staged.contact_miss)
                                  if m > self.contact_tolerance]),
            ("grounded", lambda: floor_problems(staged, self.floor_tolerance)),
            ("interpenetration", lambda: [f"people {i} and {j}: {what}"
                                          for i, j, what in interpenetrating_pairs(staged.bodies)]),
            ("in_canvas", lambda: canvas_problems(scene, framing)),
            ("readability", lambda: readability_problems(staged, scene)),
        )
        for rule, check in checks:
            problems = check()
            if problems:
                return rule, problems
        return None

    def _duplicate(self, action_id: str, scene: PoseScene) -> str | None:
        kept = self._kept[action_id]
        if kept and near_duplicate_similarity(scene, kept).max() > self.oks_threshold:
            return "near_duplicate"
        return None


def near_duplicate_similarity(scene: PoseScene, others: list[PoseScene]) -> np.ndarray:
    """``geometry.scene_similarity`` of ``scene`` against many scenes at once (vectorised: the
    gate compares every candidate with every kept entry of its action). Each other scene is
    aspect-fitted onto ``scene``'s canvas; people are matched by the best permutation."""
    out = np.zeros(len(others))
    n = len(scene.people)
    same = [i for i, o in enumerate(others) if len(o.people) == n]
    if not same or n == 0:
        return out
    sizes = np.array([(others[i].width, others[i].height) for i in same], dtype=float)
    s = np.minimum(scene.width / sizes[:, 0], scene.height / sizes[:, 1])
    offset = np.stack([(scene.width - s * sizes[:, 0]) / 2, (scene.height - s * sizes[:, 1]) / 2], axis=1)
    xy = np.stack([[p.xy for p in others[i].people] for i in same])  # (K, P, 18, 2)
    xy = xy * s[:, None, None, None] + offset[:, None, None, :]
    vis = np.stack([[p.visible for p in others[i].people] for i in same])  # (K, P, 18)
    best = np.zeros(len(same))
    for perm in permutations(range(n)):
        total = sum(_oks_batch(scene.people[a].xy, scene.people[a].visible, xy[:, b], vis[:, b])
                    for a, b in zip(range(n), perm))
        best = np.maximum(best, total / n)
    out[same] = best
    return out


def _oks_batch(a_xy: np.ndarray, a_vis: np.ndarray, b_xy: np.ndarray, b_vis: np.ndarray) -> np.ndarray:
    """``geometry.oks`` of one person against K people: (18, 2) vs (K, 18, 2) -> (K,)."""
    has_sigma = ~np.isnan(_SIGMAS)
    either = (a_vis[None] | b_vis) & has_sigma
    both = a_vis[None] & b_vis & either
    area = (_box_area(a_xy, a_vis) + _box_areas(b_xy, b_vis)) / 2
    area = np.maximum(area, 1.0)
    d2 = ((a_xy[None] - b_xy) ** 2).sum(axis=2)
    k2 = (2 * np.nan_to_num(_SIGMAS)) ** 2
    sim = np.where(both, np.exp(-d2 / (2 * area[:, None] * np.maximum(k2, 1e-12))), 0.0)
    counts = either.sum(axis=1)
    return np.where(counts > 0, (sim * either).sum(axis=1) / np.maximum(counts, 1), 0.0)


def _box_areas(xy: np.ndarray, vis: np.ndarray) -> np.ndarray:
    """``_box_area`` of K people at once: (K, 18, 2), (K, 18) -> (K,)."""
    lo = np.where(vis[..., None], xy, np.inf).min(axis=1)
    hi = np.where(vis[..., None], xy, -np.inf).max(axis=1)
    span = np.where(vis.any(axis=1)[:, None], hi - lo, 0.0)
    return span[:, 0] * span[:, 1]


def _box_area(xy: np.ndarray, vis: np.ndarray) -> float:
    pts = xy[vis]
    if len(pts) == 0:
        return 0.0
    span = pts.max(axis=0) - pts.min(axis=0)
    return float(span[0] * span[1])


def joint_limit_problems(body: Body3D) -> list[str]:
    return body_model().violations(body.angles)


def proportion_problems(body: Body3D) -> list[str]:
    """Bone ratios outside the ranges of ``body.yaml`` (measured on the posed joints)."""
    j = body.joints
    d = lambda a, b: float(np.linalg.norm(j[a] - j[b]))  # noqa: E731
    lengths = {
        "upper_arm": (d("r_shoulder", "r_elbow") + d("l_shoulder", "l_elbow")) / 2,
        "forearm": (d("r_elbow", "r_wrist") + d("l_elbow", "l_wrist")) / 2,
        "thigh": (d("r_hip", "r_knee") + d("l_hip", "l_knee")) / 2,
        "shin": (d("r_knee", "r_ankle") + d("l_knee", "l_ankle")) / 2,
        "torso": d("pelvis", "spine") + d("spine", "neck"),
        "shoulder_width": d("r_shoulder", "l_shoulder"),
        "hip_width": d("r_hip", "l_hip"),
    }
    lengths["arm"] = lengths["upper_arm"] + lengths["forearm"]
    lengths["leg"] = lengths["thigh"] + lengths["shin"]
    problems = []
    for num, den, lo, hi in body_model().proportions:
        ratio = lengths[num] / max(lengths[den], 1e-9)
        if not lo <= ratio <= hi:
            problems.append(f"{num}/{den}={ratio:.2f} outside [{lo}, {hi}]")
    return problems


def floor_problems(staged: StagedAction, tolerance: float) -> list[str]:
    """Supports off the floor, or any joint below it."""
    problems = []
    for i, (body, person) in enumerate(zip(staged.bodies, staged.people)):
        for name, pos in body.joints.items():
            if pos[1] - rest_height(name, body.profile) < -tolerance:
                problems.append(f"person {i}: {name} below the floor")
        if person.on is None and person.ground != "none":
            for name in person.support:
                gap = body.joints[name][1] - rest_height(name, body.profile) - person.lift
                if abs(gap) > tolerance:
                    problems.append(f"person {i}: {name} {gap:+.2f} m off the floor")
    return problems


def interpenetrating_pairs(bodies: list[Body3D]) -> list[tuple[int, int, str]]:
    """(i, j, what) for every two people whose body volumes overlap."""
    found = []
    parts = [_capsules(b) for b in bodies]
    for i in range(len(bodies)):
        for j in range(i + 1, len(bodies)):
            for name_a, a in parts[i].items():
                for name_b, b in parts[j].items():
                    if name_a.endswith("thigh") and name_b.endswith("thigh"):
                        continue  # legs of dancing or walking pairs may cross in depth
                    if _segment_distance(a[0], a[1], b[0], b[1]) < a[2] + b[2]:
                        found.append((i, j, f"{name_a}/{name_b}"))
    return found


def canvas_problems(scene: PoseScene, framing: str = "full") -> list[str]:
    """Visible points outside the canvas, missing trunks, people too small to read."""
    problems = []
    needed = _TRUNK + (_LEGS if framing == "full" else ())
    for i, p in enumerate(scene.people):
        pts = p.xy[p.visible]
        if len(pts) and ((pts < 0).any() or (pts[:, 0] > scene.width - 1).any() or (pts[:, 1] > scene.height - 1).any()):
            problems.append(f"person {i}: a visible point lies outside the canvas")
        missing = [n for n in needed if not p.visible[KEYPOINT_INDEX[n]]]
        if missing:
            problems.append(f"person {i}: {', '.join(missing)} not visible")
        box = p.bbox()
        if box is None or max(box[2] - box[0], box[3] - box[1]) < 0.12 * max(scene.width, scene.height):
            problems.append(f"person {i}: too small to read")
    return problems


def _capsules(body: Body3D) -> dict[str, tuple[np.ndarray, np.ndarray, float]]:
    s = body.profile.torso / _ADULT_TORSO
    j = body.joints
    head = body.landmark("back_of_head") * 0.5 + body.landmark("forehead") * 0.5
    return {
        "torso": (j["pelvis"], j["neck"], _TORSO_R * s),
        "head": (head, head, _HEAD_R * body.profile.head),
        "r_thigh": (j["r_hip"], j["r_knee"], _THIGH_R * s),
        "l_thigh": (j["l_hip"], j["l_knee"], _THIGH_R * s),
    }


def _segment_distance(p1: np.ndarray, q1: np.ndarray, p2: np.ndarray, q2: np.ndarray) -> float:
    """Shortest distance between segments p1-q1 and p2-q2 (Ericson, Real-Time Collision Detection)."""
    d1, d2, r = q1 - p1, q2 - p2, p1 - p2
    a, e, f = d1 @ d1, d2 @ d2, d2 @ r
    if a < 1e-12 and e < 1e-12:
        return float(np.linalg.norm(r))
    if a < 1e-12:
        s, t = 0.0, float(np.clip(f / e, 0, 1))
    else:
        c = d1 @ r
        if e < 1e-12:
            s, t = float(np.clip(-c / a, 0, 1)), 0.0
        else:
            b = d1 @ d2
            denom = a * e - b * b
            s = float(np.clip((b * f - c * e) / denom, 0, 1)) if denom > 1e-12 else 0.0
            t = (b * s + f) / e
            if t < 0:
                s, t = float(np.clip(-c / a, 0, 1)), 0.0
            elif t > 1:
                s, t = float(np.clip((b - c) / a, 0, 1)), 1.0
    return float(np.linalg.norm((p1 + d1 * s) - (p2 + d2 * t)))
