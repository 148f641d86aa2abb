"""The record of the pose knowledge database: a prompt linked to its verified skeleton.

One type from the library generator to the studio: the generator and importers make
`LibraryEntry`s, the index stores them and answers a search with `Hit`s (an entry and its
score), retrieval ranks hits, the query CLI and the studio's API serialise them with `to_json`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from .model import PoseScene
from .openpose_io import read_openpose, write_openpose


@dataclass
class LibraryEntry:
    """A text→pose pair.

    Args:
        id: stable id, e.g. ``"handshake-007"``.
        prompt: the text that is embedded and searched.
        action: action id (``"handshake"``); action_name: its human name.
        category: the action's category (``"interaction"``).
        people: number of people in the pose.
        view: camera view (front, three_quarter, side, back, high_angle, low_angle, mixed).
        pose: the skeleton(s): a `PoseScene`, or OpenPose JSON text as the index stores it,
            parsed on first use of `scene` (a search ranks dozens of entries and shows a few).
        profiles: body profile per person (``["adult", "child"]``).
        source: ``"synthetic"``, ``"coco"``, ``"openpose"`` or ``"detector"``.
        preferred_view: the view the entry's action reads best from (its spec's
            ``preferred_view``), which retrieval shows first; "" when the action has none.
    """

    id: str
    prompt: str
    action: str
    action_name: str
    category: str
    people: int
    view: str
    pose: PoseScene | str = field(repr=False)
    profiles: list[str] = field(default_factory=list)
    source: str = "synthetic"
    preferred_view: str = ""

    @functools.cached_property
    def scene(self) -> PoseScene:
        return self.pose if isinstance(self.pose, PoseScene) else read_openpose(self.pose)

    def to_json(self) -> dict:
        """The one serialisation (query CLI lines, the studio's ``/retrieve`` results)."""
        return {
            "id": self.id, "prompt": self.prompt, "action": self.action, "action_name": self.action_name,
            "category": self.category, "people": self.people, "view": self.view, "source": self.source,
            "pose": write_openpose(self.scene),
        }


@dataclass
class Hit:
    """One search result: a library entry and its cosine similarity to the (normalised) query."""

    entry: LibraryEntry
    score: float

    def to_json(self) -> dict:
        return {"score": round(float(self.score), 4)} | self.entry.to_json()
