"""One entry of the pose knowledge database: a prompt linked to its verified skeleton."""

from __future__ import annotations

from dataclasses import dataclass, field

from .scene import PoseScene


@dataclass
class LibraryEntry:
    """A text→pose pair, as the library generator and importers produce it and the index stores it.

    Args:
        id: stable id, e.g. ``"handshake-007"``.
        prompt: the text that is embedded and searched.
        action: action id (``"handshake"``); action_name: its human name.
        category: the action's category (``"interaction"``).
        people: number of people in ``scene``.
        view: camera view (front, three_quarter, side, back, high_angle, low_angle, mixed).
        profiles: body profile per person (``["adult", "child"]``).
        source: ``"synthetic"``, ``"coco"``, ``"openpose"`` or ``"detector"``.
        scene: the skeleton(s).
    """

    id: str
    prompt: str
    action: str
    action_name: str
    category: str
    people: int
    view: str
    scene: PoseScene
    profiles: list[str] = field(default_factory=list)
    source: str = "synthetic"
