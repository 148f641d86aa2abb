"""Shared pose_db fixtures: a small real index built by the real build from the generated library.

`small_index` is a session-wide PoseIndex over a few dozen generated actions with 1, 2 and 3
people (a few entries each), built into a temporary folder by `build_index`; tests must only
read it. Tests that write build their own index (`tests.helpers.entries.tiny_entries` +
`build_index`). The real MiniLM embedder, ``minilm_embedder``, is in ``tests/conftest.py``.
"""

from __future__ import annotations

import pytest

SMALL_INDEX_VARIATIONS = 4
_ACTIONS_PER_PEOPLE = {1: 16, 2: 10, 3: 6}


@pytest.fixture(scope="session")
def small_index_actions() -> list[str]:
    """Action ids of the small index: the first few of each people count, by id.

    Only actions whose spec passes its own plausibility check: the library's tests judge the
    specs; these tests are about the index.
    """
    from pose_db.library.generate import check_action
    from pose_db.library.specs import SpecError, load_actions

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
    from pose_db.index.build import build_index

    out = tmp_path_factory.mktemp("small-index") / "index"
    index = build_index(out, url="", seed=0, actions=small_index_actions, variations=SMALL_INDEX_VARIATIONS,
                        embedder=minilm_embedder, progress=False)
    yield index
    index.close()
