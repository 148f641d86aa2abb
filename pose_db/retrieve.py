"""RAG-Pose retrieval at inference time (ASTRA sec. 3.1.1).

    prompt --normalise--> canonical query --MiniLM--> v_query --top-k inner product--> hits
           --gate (score >= 0.55)--> skeletons with scores, or no match

The number of people filters the search: the caller's count of human subjects when it knows
it, else the count the prompt describes ("three friends"). An inferred count only narrows the
search; when it finds nothing it is dropped, because prompts can miscount (names, metaphors).
A prompt below the gate (food, cars, landscapes) gets no skeleton, and generation then relies
on text alone for pose, as in the paper. The gate asks a little more of prompts that name
nobody: "a spiral staircase seen from above" shares words with "climbing the stairs, seen from
above", so a prompt with no person in it must clear the gate plus a margin (`person_evidence`).

Ranking. Every library prompt names a subject, an environment and a camera view; a query
usually names only the subject and the action. One entry can win on an incidental word
("an athletic woman raising a hand", for "a woman raising both arms"), so candidates are
ranked by their own score blended with their action's evidence: the mean of the action's best
few candidate scores (k-NN voting). The camera view asked for ("side view", "from behind")
is preferred; when none is asked for, views that show the body plainly (front, three-quarter)
are preferred over side, high/low angles and back. Scores reported stay the raw cosine, and the
gate applies to them.

Subject names ("Mia and Leo shaking hands", or the names the studio knows) are searched as
people ("two people shaking hands"): the library describes people, not who they are.

For browsing, the results are diversified: the best match stays first, then one result per
(action, view) before any near-copy of one already shown.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from .normalize import Normalizer, RuleNormalizer, replace_names, requested_view
from .people_count import count_people, person_evidence
from .scene import MAX_PEOPLE, PoseError, PoseScene

DEFAULT_THRESHOLD = 0.55  # the paper's gate (sigma_s), tuned there on a validation set
# View preference. The view asked for wins; when none is asked for, the views that show the
# body and the face plainly come first (an identity-driven generator needs the face), side and
# tilted views next, back views last. Measured on the geometric cases (benchmarks/), this beat
# both no preference and choosing the least foreshortened skeleton.
DEFAULT_VIEW_TIER = {"front": 0, "three_quarter": 0, "side": 1, "high_angle": 1, "low_angle": 1, "back": 2}
VIEW_BONUS = 0.02  # per tier, in the ranking key of the results after the first
MAX_TOP_K = 100
MAX_PROMPT_CHARS = 4000


class Embedder(Protocol):
    def encode(self, texts: list[str]) -> np.ndarray: ...


class Index(Protocol):
    def search(self, vector: np.ndarray, k: int, people: int | None = None) -> list[Any]: ...


@dataclass
class RetrievalResult:
    """One retrieved skeleton and the library entry it belongs to."""

    id: str
    score: float  # cosine similarity of the canonical query and the entry's prompt
    prompt: str
    action: str
    action_name: str
    category: str
    people: int
    view: str
    source: str
    scene: PoseScene

    @classmethod
    def from_hit(cls, hit: Any) -> RetrievalResult:
        return cls(**{name: getattr(hit, name) for name in cls.__dataclass_fields__})

    def to_json(self) -> dict:
        """The query CLI's result record: id, score, prompt, action and the OpenPose JSON pose."""
        return {
            "id": self.id,
            "score": round(float(self.score), 4),
            "prompt": self.prompt,
            "action": self.action,
            "pose": self.scene.to_openpose(),
        }


@dataclass
class Retrieval:
    """What RAG-Pose found for one prompt.

    Attributes:
        query: the user's prompt.
        canonical: the normalised query that was embedded.
        people: the people count the search was filtered by (None: not filtered).
        matched: False when no entry passed the gate; `results` is then empty.
        results: best first, then diversified; every score >= the gate.
    """

    query: str
    canonical: str
    people: int | None
    matched: bool
    results: list[RetrievalResult]

    @property
    def best(self) -> RetrievalResult | None:
        return self.results[0] if self.results else None

    def to_json(self) -> dict:
        return {
            "query": self.query,
            "canonical": self.canonical,
            "matched": self.matched,
            "results": [r.to_json() for r in self.results],
        }


class PoseRetriever:
    """Normalise, embed, search, gate and diversify: the RAG-Pose retriever.

    Args:
        index: the pose index (`PoseIndex`): `search(vector, k, people=None)` returns hits
            with a cosine `score`, best first.
        embedder: the sentence embedder (`Embedder`): `encode(texts)` gives L2-normalised rows.
        normalizer: prompt -> canonical query; default the offline `RuleNormalizer`.
        threshold: the confidence gate; hits below it are never returned.
        diversify: spread results over distinct (action, view) pairs after the best one.
        rerank: rank by score blended with the action's evidence and the view preference
            (see the module docstring); False ranks by raw score.
        vote: how many of an action's best candidate scores make its evidence.
        candidates: how many hits to fetch before gating and diversifying (at least top_k).
        margins: extra score the gate asks of prompts by how plainly they describe a person
            (`people_count.person_evidence`): {0: names no person or body, 1: only a body or an
            action ("doing a handstand"), 2: a person}.
        cache_size: canonical queries whose embedding is kept (repeated prompts skip the model).
    """

    def __init__(
        self,
        index: Index,
        embedder: Embedder,
        normalizer: Normalizer | None = None,
        threshold: float = DEFAULT_THRESHOLD,
        *,
        diversify: bool = True,
        rerank: bool = True,
        vote: int = 3,
        candidates: int = 24,
        margins: dict[int, float] | None = None,
        cache_size: int = 512,
    ) -> None:
        if not 0.0 < float(threshold) <= 1.0:
            raise PoseError(f"threshold must be in (0, 1], got {threshold}: cosine gates like 0.55 work.")
        self.index = index
        self.embedder = embedder
        self.normalizer = normalizer or RuleNormalizer()
        self.threshold = float(threshold)
        self.diversify = diversify
        self.rerank = rerank
        self.vote = max(int(vote), 1)
        self.candidates = int(candidates)
        self.margins = {0: 0.15, 1: 0.05, 2: 0.0} if margins is None else dict(margins)
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = int(cache_size)

    @classmethod
    def default(
        cls, path: str | None = None, *, normalizer: Normalizer | None = None, threshold: float = DEFAULT_THRESHOLD
    ) -> PoseRetriever:
        """The retriever over the default index (built first when missing) and MiniLM."""
        from .build import ensure_index
        from .embed import Embedder as MiniLM

        embedder = MiniLM()
        index = ensure_index(path=path, embedder=embedder)
        return cls(index, embedder, normalizer, threshold)

    @staticmethod
    def check_inputs(prompt: str, people: int | None, top_k: int) -> None:
        """Reject bad arguments up front, with a message that says what to give instead."""
        if not isinstance(prompt, str) or not prompt.strip():
            raise PoseError("The prompt is empty: describe who is in the picture and what they do.")
        if len(prompt) > MAX_PROMPT_CHARS:
            raise PoseError(f"The prompt has {len(prompt)} characters; shorten it to at most {MAX_PROMPT_CHARS}.")
        if people is not None and (isinstance(people, bool) or not isinstance(people, (int, np.integer)) or not 0 <= people <= MAX_PEOPLE):
            raise PoseError(f"people must be a whole number from 0 to {MAX_PEOPLE} (or None to infer it), got {people!r}.")
        if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or not 1 <= top_k <= MAX_TOP_K:
            raise PoseError(f"top_k must be a whole number from 1 to {MAX_TOP_K}, got {top_k!r}.")

    def retrieve(self, prompt: str, people: int | None = None, top_k: int = 8,
                 names: list[str] | None = None) -> Retrieval:
        """The skeletons for `prompt`: best first, all above the gate, or no match.

        Args:
            prompt: the user's prompt, as typed.
            people: how many human subjects the caller has (filters strictly); None to infer
                it from the prompt (filters only while that finds a match). 0 means nobody to
                pose: no match.
            top_k: how many results at most.
            names: the subjects' names, when the caller knows them: they are read as people
                ("Mia hugging Leo" is searched as "a person hugging a person").
        """
        self.check_inputs(prompt, people, top_k)
        named = replace_names(prompt, names)
        canonical = self.normalizer.normalize(named)
        if people == 0:
            return Retrieval(prompt, canonical, 0, False, [])
        vector = self.embed(canonical)
        filter_people = int(people) if people is not None else count_people(named)
        view = requested_view(named)
        gate = self.gate(named) if people is None else self.threshold  # the caller has subjects to pose
        hits = self._ranked(self.index.search(vector, self._pool(top_k), people=filter_people), view, gate)
        if not hits and people is None and filter_people is not None:
            filter_people = None  # the inferred count may be wrong; the gate still guards
            hits = self._ranked(self.index.search(vector, self._pool(top_k), people=None), view, gate)
        chosen = diversified(hits, top_k) if self.diversify else hits[:top_k]
        results = [RetrievalResult.from_hit(h) for h in chosen]
        return Retrieval(prompt, canonical, filter_people, bool(results), results)

    def embed(self, canonical: str) -> np.ndarray:
        """The query vector of a canonical query, from the cache when it was asked before."""
        vector = self._cache.get(canonical)
        if vector is None:
            vector = np.asarray(self.embedder.encode([canonical]), dtype=np.float32)[0]
            self._cache[canonical] = vector
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(canonical)
        return vector

    def _pool(self, top_k: int) -> int:
        return max(top_k, self.candidates) if self.diversify else top_k

    def gate(self, prompt: str) -> float:
        """The score a hit must reach for `prompt`: the threshold plus the prompt's margin."""
        return self.threshold + self.margins.get(person_evidence(prompt), 0.0)

    def _ranked(self, hits: list, view: str | None, gate: float) -> list:
        """The hits above the gate, best first (reranked unless `rerank` is off)."""
        hits = sorted(hits, key=lambda h: -h.score)
        if self.rerank:
            hits = reranked(hits, view, self.vote, gate)
        return [h for h in hits if h.score >= gate]


def view_tier(view: str, asked: str | None) -> int:
    """0 for the preferred views, higher for worse ones (see DEFAULT_VIEW_TIER)."""
    if asked:
        return 0 if view == asked else 1
    return DEFAULT_VIEW_TIER.get(view, 1)


def reranked(hits: list, asked_view: str | None = None, vote: int = 3, threshold: float = 0.0) -> list:
    """Hits (best score first) in ranking order; see the module docstring.

    Key = half the hit's score + half its action's evidence (the mean of the action's `vote`
    best scores, padded with the pool's lowest score so an action seen once is not trusted
    like one seen three times) - VIEW_BONUS per view tier. The first result is then the best
    action's entry in the most preferred view: within one action, score differences come
    from incidental words (subject, place), not from the pose.
    """
    if not hits:
        return []
    floor = min(h.score for h in hits)
    by_action: dict[str, list[float]] = {}
    for h in hits:
        by_action.setdefault(h.action, []).append(h.score)
    evidence = {a: (sum(s[:vote]) + floor * max(vote - len(s), 0)) / vote for a, s in by_action.items()}
    keys = {id(h): 0.5 * h.score + 0.5 * evidence[h.action] - VIEW_BONUS * view_tier(h.view, asked_view) for h in hits}
    ordered = sorted(hits, key=lambda h: -keys[id(h)])
    top_action = ordered[0].action
    first = min((h for h in ordered if h.action == top_action and h.score >= threshold),
                key=lambda h: (view_tier(h.view, asked_view), -keys[id(h)]), default=ordered[0])
    return [first, *(h for h in ordered if h is not first)]


def diversified(hits: list, k: int) -> list:
    """At most k hits: the best first, then one per (action, view) pair, then the rest.

    Each pass keeps the ranking order, so the list only reorders near-copies behind variety.
    """
    if not hits:
        return []
    chosen, seen = [hits[0]], {(hits[0].action, hits[0].view)}
    rest = []
    for hit in hits[1:]:
        key = (hit.action, hit.view)
        if key in seen:
            rest.append(hit)
        else:
            seen.add(key)
            chosen.append(hit)
    return (chosen + rest)[:k]
