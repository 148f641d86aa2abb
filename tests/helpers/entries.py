"""Hand-made library entries for the index tests (no generator needed) and an exact top-k.

`tiny_entries` is a handful of entries with 1, 2 and 3 people; `many_entries(n)` repeats them
under new ids and prompts for tests that need a big or slow build; `brute_force_top` is the
numpy answer a search must agree with.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from pose_db.scene.entry import LibraryEntry
from pose_db.scene.model import PoseScene
from tests.helpers.poses import standing_person


def tiny_entries(prefix: str = "t", source: str = "synthetic") -> list[LibraryEntry]:
    """A handful of hand-made entries with 1, 2 and 3 people (no generator needed)."""
    rows = [
        ("a man waving hello with one hand", "wave", 1),
        ("a woman sitting on a chair reading", "sit", 1),
        ("an acrobat doing a handstand", "handstand", 1),
        ("two people shaking hands", "handshake", 2),
        ("a couple hugging each other", "hug", 2),
        ("three friends standing side by side posing for a photo", "group_pose", 3),
    ]
    entries = []
    for i, (prompt, action, n) in enumerate(rows):
        people = [standing_person(90 + 160 * p, 80 + 7 * i, 300, wave=(action == "wave")) for p in range(n)]
        entries.append(LibraryEntry(id=f"{prefix}-{i:03d}", prompt=prompt, action=action, action_name=action.title(),
                                    category="test", people=n, view="front", pose=PoseScene(512, 512, people),
                                    profiles=["adult"] * n, source=source))
    return entries


def many_entries(n: int) -> list[LibraryEntry]:
    """`n` entries cycling through `tiny_entries`, each with its own id and prompt."""
    base = tiny_entries()
    return [replace(base[i % len(base)], id=f"many-{i:04d}", prompt=f"{base[i % len(base)].prompt}, take {i}")
            for i in range(n)]


def brute_force_top(records: list[dict], query: np.ndarray, k: int) -> list[str]:
    """Ids of the k records nearest to `query` by exact cosine, computed with numpy."""
    matrix = np.stack([r["embedding"] for r in records])
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    scores = matrix @ (query / np.linalg.norm(query))
    return [records[i]["id"] for i in np.argsort(-scores, kind="stable")[:k]]


def interrupted_entries(total: int = 400, stop_at: int = 300):
    """`many_entries(total)` that raises KeyboardInterrupt at entry `stop_at`: a build killed mid-way."""
    for i, entry in enumerate(many_entries(total)):
        if i == stop_at:
            raise KeyboardInterrupt
        yield entry
