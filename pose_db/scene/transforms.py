"""Geometric edits of people and scenes. Every function returns a new object.

Angles are in degrees, clockwise as seen on screen (the y axis points down).
"""

from __future__ import annotations

import numpy as np

from .model import MAX_PEOPLE, Person, PoseError, PoseScene
from .skeleton import MIRROR_INDEX

_MIRRORED_EXTRAS = {"hand_left_keypoints_2d": "hand_right_keypoints_2d",
                    "hand_right_keypoints_2d": "hand_left_keypoints_2d"}


def affine(person: Person, matrix: np.ndarray, offset: tuple[float, float] = (0.0, 0.0)) -> Person:
    """Apply ``x' = matrix @ x + offset`` to every keypoint (body and extras)."""
    m, t = np.asarray(matrix, dtype=np.float64), np.asarray(offset, dtype=np.float64)
    out = person.copy()
    out.xy = person.xy @ m.T + t
    for arr in out.extras.values():
        arr[:, :2] = arr[:, :2] @ m.T + t
    return out


def translate(person: Person, dx: float, dy: float) -> Person:
    return affine(person, np.eye(2), (dx, dy))


def scale(person: Person, s: float, about: tuple[float, float] | None = None) -> Person:
    """Scale about a point (default: the centre of the person's box)."""
    if not np.isfinite(s) or s <= 0:
        raise PoseError(f"Scale factor must be a positive number, got {s}.")
    c = np.asarray(about if about is not None else _centre(person))
    return affine(person, np.eye(2) * s, c - s * c)


def rotate(person: Person, degrees: float, about: tuple[float, float] | None = None) -> Person:
    """Rotate clockwise on screen about a point (default: the centre of the person's box)."""
    a = np.deg2rad(degrees)
    m = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    c = np.asarray(about if about is not None else _centre(person))
    return affine(person, m, c - m @ c)


def mirror(person: Person, axis_x: float | None = None) -> Person:
    """Reflect about the vertical line ``x = axis_x`` (default: the person's centre) and swap
    left and right keypoints, so the mirrored person's left arm is still called "left"."""
    ax = _centre(person)[0] if axis_x is None else axis_x
    flipped = affine(person, np.diag([-1.0, 1.0]), (2 * ax, 0.0))
    flipped.xy = flipped.xy[list(MIRROR_INDEX)]
    flipped.visible = flipped.visible[list(MIRROR_INDEX)]
    flipped.extras = {_MIRRORED_EXTRAS.get(k, k): v for k, v in flipped.extras.items()}
    return flipped


def mirror_scene(scene: PoseScene) -> PoseScene:
    """Mirror the whole scene about the canvas's vertical centre line."""
    return PoseScene(scene.width, scene.height, [mirror(p, scene.width / 2) for p in scene.people])


def fit_scene(scene: PoseScene, width: int, height: int) -> PoseScene:
    """Place the scene on a ``width`` x ``height`` canvas, scaled uniformly (no stretching) to
    fit and centred: the aspect-fit a pose map needs when the output size changes."""
    s = min(width / scene.width, height / scene.height)
    offset = ((width - s * scene.width) / 2, (height - s * scene.height) / 2)
    return PoseScene(width, height, [affine(p, np.eye(2) * s, offset) for p in scene.people])


def duplicate_person(scene: PoseScene, index: int, offset: tuple[float, float] = (40.0, 0.0)) -> PoseScene:
    """Append a copy of person ``index``, shifted by ``offset`` and assigned to no subject."""
    if not 0 <= index < len(scene.people):
        raise PoseError(f"No person {index} in a scene of {len(scene.people)}.")
    if len(scene.people) >= MAX_PEOPLE:
        raise PoseError(f"A scene holds at most {MAX_PEOPLE} people; remove one before duplicating.")
    twin = translate(scene.people[index], *offset)
    twin.subject = None
    return PoseScene(scene.width, scene.height, [p.copy() for p in scene.people] + [twin])


def _centre(person: Person) -> tuple[float, float]:
    box = person.bbox()
    if box is None:
        raise PoseError("This person has no visible keypoint to transform about.")
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
