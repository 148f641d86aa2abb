"""A launched studio for the UI tests: the tiny engine and a small real RAG-Pose retriever.

The retriever is real end to end — MiniLM embeddings, a Chroma collection, the rule
normaliser, the gate — over the retrieval tests' hand-made entries, so it builds in seconds.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def small_retriever(tmp_path_factory):
    from pose_db.retrieve import PoseRetriever
    from tests.pose_db.test_retrieve import CountingEmbedder, HandMadeChromaIndex

    embedder = CountingEmbedder()
    return PoseRetriever(HandMadeChromaIndex(tmp_path_factory.mktemp("ui-index"), embedder),
                         embedder)


@pytest.fixture(scope="session")
def tiny_engine():
    from engine.service import EngineService

    return EngineService.tiny()


@pytest.fixture(scope="session")
def studio(tiny_engine, small_retriever):
    """``(demo, url)`` of the studio running in-process on a free port."""
    from tests.ui.launch import running_studio

    with running_studio(tiny_engine, small_retriever) as launched:
        yield launched


@pytest.fixture(scope="session")
def studio_url(studio):
    return studio[1]
