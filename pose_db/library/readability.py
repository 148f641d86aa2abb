"""2D readability: does the photographed skeleton still show its pose? (issue 14, classes 4-5)

The other gate rules judge the posed 3D bodies; a creator only ever sees their 2D projection.
Two ways a correct 3D pose becomes an unreadable pose map:

- **Hidden parts** (``hidden_parts``): a body part that carries the pose (a thigh of someone
  sitting, a bowing torso, a kneeling shin) points along the camera's line of sight, so its
  drawn length shrinks to a stub and the skeleton reads as standing. A part *carries the pose*
  when it is tilted more than ``TILT`` degrees from the standing direction (torso up, thighs and
  shins down). It is *hidden* when its drawn length is under ``FORESHORTENED`` of its true
  length (a stub), or when its drawn tilt from the image's vertical is under half its true tilt
  (a bow seen from the front is drawn upright). A person's pose is lost when the torso is hidden,
  or when both thighs (or both shins) that carry it are: one leg still drawn in its true shape
  keeps a squat readable. The true length in pixels uses the person's
  least-foreshortened bone as the scale (under the library's mild perspective, some bone of
  every pose lies nearly across the view).
- **Merged silhouettes** (``silhouette_overlap``): two people's trunks and legs drawn over each
  other (a hug seen from the side, a massage from the front) read as one tangle. Each person's
  trunk, legs and neck are drawn as strokes ``STROKE`` x their torso length wide; a person's
  overlap is the share of their strokes' area that other people's strokes cover. Arms are left out: arms meeting the
  other person (hugs, handshakes) are the action. A person is measured against everyone else at
  once, so a huddle of three merges even where each pair only touches. Some actions overlap from every side (a hug
  from behind, a child on a hip): a view is refused only when another view of the same bodies
  overlaps clearly less (``MARGIN``), so those actions keep their most readable views.

Thresholds were set on contact sheets of the library's candidates (benchmarks/library_review.py).
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from pose_db.scene.model import Person, PoseScene
from pose_db.scene.skeleton import KEYPOINT_INDEX

from .rig.camera import view_specs
from .rig.kinematics import Body3D
from .staging import StagedAction, photograph

TILT = 35.0  # degrees from standing before a part carries the pose
FORESHORTENED = 0.35  # drawn / true length under which a part is hidden
STROKE = 0.35  # stroke width, as a fraction of the person's drawn torso length
OVERLAP = 0.45  # silhouette overlap above which two people read as one
MARGIN = 0.1  # ... unless no view of the same bodies overlaps this much less
_GRID = 128  # pixels on the long side of the overlap masks

# part -> (from, to, standing direction of from->to in the world: +1 up, -1 down)
_PARTS = {"torso": ("mid_hip", "neck", 1.0), "r_thigh": ("r_hip", "r_knee", -1.0),
          "l_thigh": ("l_hip", "l_knee", -1.0), "r_shin": ("r_knee", "r_ankle", -1.0),
          "l_shin": ("l_knee", "l_ankle", -1.0)}
# Bones whose drawn/true length ratio can give the person's pixel scale.
_SCALE_BONES = (("r_shoulder", "r_elbow"), ("l_shoulder", "l_elbow"), ("r_elbow", "r_wrist"),
                ("l_elbow", "l_wrist"), ("r_hip", "r_knee"), ("l_hip", "l_knee"), ("r_knee", "r_ankle"),
                ("l_knee", "l_ankle"), ("mid_hip", "neck"), ("r_shoulder", "l_shoulder"), ("r_hip", "l_hip"))
_STROKES = (("neck", "r_hip"), ("neck", "l_hip"), ("r_hip", "r_knee"), ("l_hip", "l_knee"),
            ("r_knee", "r_ankle"), ("l_knee", "l_ankle"), ("neck", "nose"))


def _point3(body: Body3D, name: str) -> np.ndarray:
    if name == "mid_hip":
        return (body.joints["r_hip"] + body.joints["l_hip"]) / 2
    return body.joints[name]


def _point2(person: Person, name: str) -> tuple[np.ndarray, bool]:
    if name == "mid_hip":
        r, l = KEYPOINT_INDEX["r_hip"], KEYPOINT_INDEX["l_hip"]
        return (person.xy[r] + person.xy[l]) / 2, bool(person.visible[r] and person.visible[l])
    i = KEYPOINT_INDEX[name]
    return person.xy[i], bool(person.visible[i])


def _drawn(person: Person, a: str, b: str) -> float | None:
    (pa, va), (pb, vb) = _point2(person, a), _point2(person, b)
    return float(np.linalg.norm(pb - pa)) if va and vb else None


def hidden_parts(body: Body3D, person: Person) -> dict[str, bool]:
    """For each part of ``person`` (``body`` photographed) that carries the pose: is it hidden?"""
    ratios = []
    for a, b in _SCALE_BONES:
        true, drawn = float(np.linalg.norm(_point3(body, b) - _point3(body, a))), _drawn(person, a, b)
        if drawn is not None and true > 1e-3:
            ratios.append(drawn / true)
    if not ratios or max(ratios) <= 0:
        return {}
    scale = max(ratios)
    carrying = {}
    for part, (a, b, standing) in _PARTS.items():
        drawn = _drawn(person, a, b)
        vector = _point3(body, b) - _point3(body, a)
        true = float(np.linalg.norm(vector))
        if drawn is None or true < 1e-3:
            continue
        tilt = float(np.degrees(np.arccos(np.clip(standing * vector[1] / true, -1.0, 1.0))))
        if tilt <= TILT:
            continue
        shown = drawn / (scale * true)
        (pa, _), (pb, _) = _point2(person, a), _point2(person, b)
        # image y points down: standing up is -y for the torso, +y for the legs
        drawn_tilt = float(np.degrees(np.arccos(np.clip(-standing * (pb - pa)[1] / max(drawn, 1e-9), -1.0, 1.0))))
        carrying[part] = shown < FORESHORTENED or drawn_tilt < tilt / 2
    return carrying


def pose_lost(carrying: dict[str, bool]) -> list[str]:
    """The groups whose hiding loses the pose (``hidden_parts``' result): torso, thighs, shins."""
    lost = ["torso"] if carrying.get("torso") else []
    for group in ("thigh", "shin"):
        parts = [hidden for part, hidden in carrying.items() if part.endswith(group)]
        if parts and all(parts):
            lost.append(f"{group}s")
    return lost


def silhouette_overlap(scene: PoseScene) -> list[float]:
    """Per person, the share of their drawn trunk and legs that lies on the other people's (empty
    for one person): a trio in a huddle overlaps as a group even where each pair only touches."""
    scale = _GRID / max(scene.width, scene.height)
    size = (max(1, round(scene.width * scale)), max(1, round(scene.height * scale)))
    masks = []
    for person in scene.people:
        torso = _drawn(person, "neck", "mid_hip") or 0.0
        width = max(2, round(STROKE * torso * scale))
        image = Image.new("1", size)
        draw = ImageDraw.Draw(image)
        for a, b in _STROKES:
            (pa, va), (pb, vb) = _point2(person, a), _point2(person, b)
            if va and vb:
                draw.line([tuple(pa * scale), tuple(pb * scale)], fill=1, width=width)
        masks.append(np.asarray(image, dtype=bool))
    if len(masks) < 2:
        return []
    shares = []
    for i, mask in enumerate(masks):
        others = np.logical_or.reduce([m for j, m in enumerate(masks) if j != i])
        shares.append(float((mask & others).sum() / mask.sum()) if mask.sum() else 0.0)
    return shares


def _worst_overlap(scene: PoseScene) -> float:
    return max(silhouette_overlap(scene), default=0.0)


def readability_problems(staged: StagedAction, scene: PoseScene) -> list[str]:
    """Every reason the scene (``staged`` photographed) would not read; empty when it reads."""
    problems = [f"person {i}: {group} hidden by the view"
                for i, (body, person) in enumerate(zip(staged.bodies, scene.people, strict=True))
                for group in pose_lost(hidden_parts(body, person))]
    worst = _worst_overlap(scene)
    if worst > OVERLAP:
        best = min(_worst_overlap(photograph(staged, view)) for view in view_specs())
        if worst > best + MARGIN:
            problems.append(f"people overlap {worst:.2f} in 2D (another view: {best:.2f})")
    return problems
