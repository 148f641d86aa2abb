"""The retrieval tests' hand-made library, built into a real `PoseIndex`, and two test doubles.

`ENTRIES` are a few entries whose prompts we know, so a test can say which one a query must
find. `build_retrieval_index` stores them with the real build (`pose_db.index.build`): the
rule-normalised prompt is embedded and each action's entries are blended with its centroid,
exactly as for the generated library. `CountingEmbedder` is the real MiniLM embedder counting
the texts it is asked to embed; `RecordingIndex` is a real index recording the people filter
of every search.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pose_db.scene.entry import LibraryEntry
from pose_db.scene.model import PoseScene
from tests.helpers.poses import standing_person

# (id, prompt, action, view, people); an action's entries are consecutive, as the build expects.
ENTRIES = [
    ("wave-000", "a man waving hello with one hand", "wave", "front", 1),
    ("wave-001", "a man waving hello with his right hand", "wave", "front", 1),
    ("wave-002", "a young man waving hello with one hand raised", "wave", "front", 1),
    ("wave-003", "a woman waving hello with one hand, side view", "wave", "side", 1),
    ("wave-004", "a child waving hello, seen from behind", "wave", "back", 1),
    ("sit-000", "a woman sitting on a chair", "sit_chair", "front", 1),
    ("handstand-000", "an acrobat doing a handstand", "handstand", "front", 1),
    ("run-000", "a man running fast", "run", "side", 1),
    ("handshake-000", "two people shaking hands", "handshake", "front", 2),
    ("handshake-001", "two businessmen shaking hands, side view", "handshake", "side", 2),
    ("hug-000", "a couple hugging each other", "hug", "front", 2),
    ("wave-pair-000", "two friends waving hello together", "wave_pair", "front", 2),
    ("group-000", "three friends standing side by side posing", "group_pose", "front", 3),
    ("group-001", "three friends waving hello together", "group_wave", "front", 3),
]


def standing_scene(people: int) -> PoseScene:
    """`people` standing people side by side on a 512 x 512 canvas."""
    return PoseScene(512, 512, [standing_person(100 + 150 * i, 100, 250) for i in range(people)])


def retrieval_entries() -> list[LibraryEntry]:
    """`ENTRIES` as library entries (synthetic, like the generated library)."""
    return [LibraryEntry(id=id_, prompt=prompt, action=action, action_name=action, category="test",
                         people=people, view=view, pose=standing_scene(people), profiles=["adult"] * people,
                         source="synthetic")
            for id_, prompt, action, view, people in ENTRIES]


def build_retrieval_index(out: str | Path, embedder):
    """A real embedded `PoseIndex` at `out` holding `ENTRIES` (a couple of seconds)."""
    from pose_db.index.build import build_index

    return build_index(out, url="", entries=retrieval_entries(), embedder=embedder, progress=False)


class CountingEmbedder:
    """The real MiniLM embedder (`pose_db.index.embedder.Embedder`), counting the texts it embeds.

    Args:
        inner: the embedder to count for (default: a new `Embedder`); share the session's
            ``minilm_embedder`` to skip loading the model again.
    """

    def __init__(self, inner=None):
        if inner is None:
            from pose_db.index.embedder import Embedder

            inner = Embedder()
        self.inner = inner
        self.calls = 0

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def encode(self, texts) -> np.ndarray:
        texts = list(texts)
        self.calls += len(texts)
        return self.inner.encode(texts)


class RecordingIndex:
    """A real index that records the people filter of every search in `searches` (None: unfiltered)."""

    def __init__(self, index):
        self.index = index
        self.searches: list[int | None] = []

    def search(self, vector, k, people=None):
        self.searches.append(people)
        return self.index.search(vector, k, people=people)

    def count(self) -> int:
        return self.index.count()
