"""The pose scene: a canvas and the people on it, each with 18 BODY-18 keypoints.

This is the one representation every part shares. The database stores it, the retriever
returns it, the studio's canvas edits it and the engine renders it into its pose map. Hidden
keypoints keep their coordinates here (so an editor can show them again) but are written to
OpenPose JSON as [0, 0, 0], which ControlNet tools read as "missing". `openpose_io` reads and
writes that JSON (`read_openpose`, `write_openpose`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .skeleton import HAND_KEYS, NUM_HAND_KEYPOINTS, NUM_KEYPOINTS

CANVAS_MIN, CANVAS_MAX = 64, 4096
MAX_PEOPLE = 10
MAX_SUBJECTS = 4


class PoseError(ValueError):
    """Invalid pose data. The message says what is wrong and what to do about it."""


@dataclass(eq=False)
class Person:
    """One skeleton: pixel coordinates (x right, y down), visibility, and its subject.

    Args:
        xy: (18, 2) float coordinates in canvas pixels, BODY-18 order.
        visible: (18,) bool; hidden points are neither drawn nor written.
        subject: index of the reference subject this person is assigned to, or None.
        extras: optional OpenPose extensions kept through a round trip, in the same pixel
            frame. Hands (``HAND_KEYS``) are (21, 3) arrays ``[x, y, c]`` in OpenPose's hand
            order, ``c > 0`` visible; other keys (the face) are kept as they came.
    """

    xy: np.ndarray
    visible: np.ndarray
    subject: int | None = None
    extras: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.xy = np.asarray(self.xy, dtype=np.float64).reshape(NUM_KEYPOINTS, 2)
        self.visible = np.asarray(self.visible, dtype=bool).reshape(NUM_KEYPOINTS)
        if not np.isfinite(self.xy[self.visible]).all():
            raise PoseError("A visible keypoint has a non-finite coordinate; give real numbers.")
        if self.subject is not None and not (0 <= int(self.subject) < MAX_SUBJECTS):
            raise PoseError(f"subject must be 0 to {MAX_SUBJECTS - 1}, got {self.subject}.")
        for key in HAND_KEYS:
            if key not in self.extras:
                continue
            hand = np.asarray(self.extras[key], dtype=np.float64)
            if hand.size != NUM_HAND_KEYPOINTS * 3:
                raise PoseError(f"{key} needs {NUM_HAND_KEYPOINTS} x [x, y, c] = {NUM_HAND_KEYPOINTS * 3} "
                                f"numbers, got {hand.size}.")
            hand = hand.reshape(NUM_HAND_KEYPOINTS, 3)
            if not np.isfinite(hand).all() or (hand[:, 2] < 0).any():
                raise PoseError(f"{key} holds a non-finite number or a negative confidence; give real "
                                "coordinates and confidences of 0 (missing) or more.")
            self.extras[key] = hand

    @property
    def hands(self) -> dict[str, np.ndarray]:
        """The hands this person has, ``{HAND_KEYS key: (21, 3) array}``."""
        return {key: self.extras[key] for key in HAND_KEYS if key in self.extras}

    @classmethod
    def from_points(cls, points: dict[int, tuple[float, float]], subject: int | None = None) -> Person:
        """A person with only the given keypoints visible: ``{index: (x, y)}``."""
        xy = np.zeros((NUM_KEYPOINTS, 2))
        visible = np.zeros(NUM_KEYPOINTS, dtype=bool)
        for i, (x, y) in points.items():
            xy[i] = (x, y)
            visible[i] = True
        return cls(xy=xy, visible=visible, subject=subject)

    @property
    def visible_xy(self) -> np.ndarray:
        return self.xy[self.visible]

    def bbox(self) -> tuple[float, float, float, float] | None:
        """(x0, y0, x1, y1) around the visible keypoints, or None if none is visible."""
        pts = self.visible_xy
        if len(pts) == 0:
            return None
        (x0, y0), (x1, y1) = pts.min(axis=0), pts.max(axis=0)
        return float(x0), float(y0), float(x1), float(y1)

    def copy(self) -> Person:
        return Person(self.xy.copy(), self.visible.copy(), self.subject,
                      {k: v.copy() for k, v in self.extras.items()})

    def __eq__(self, other: object) -> bool:
        """Equal as OpenPose sees them: same visible points, same subject, same extras."""
        if not isinstance(other, Person):
            return NotImplemented
        return (
            np.array_equal(self.visible, other.visible)
            and np.array_equal(self.visible_xy, other.visible_xy)
            and self.subject == other.subject
            and self.extras.keys() == other.extras.keys()
            and all(np.array_equal(v, other.extras[k]) for k, v in self.extras.items())
        )


@dataclass(eq=False)
class PoseScene:
    """A canvas of ``width`` x ``height`` pixels and the people posed on it."""

    width: int
    height: int
    people: list[Person] = field(default_factory=list)

    def __post_init__(self) -> None:
        for name, size in (("width", self.width), ("height", self.height)):
            if not (CANVAS_MIN <= size <= CANVAS_MAX):
                raise PoseError(f"Canvas {name} must be {CANVAS_MIN} to {CANVAS_MAX} pixels, got {size}.")
        self.width, self.height = int(self.width), int(self.height)
        if len(self.people) > MAX_PEOPLE:
            raise PoseError(f"A scene holds at most {MAX_PEOPLE} people, got {len(self.people)}; remove some.")

    def copy(self) -> PoseScene:
        return PoseScene(self.width, self.height, [p.copy() for p in self.people])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PoseScene):
            return NotImplemented
        return (self.width, self.height) == (other.width, other.height) and self.people == other.people
