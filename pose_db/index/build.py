"""Build the RAG-Pose index: generate the library, embed every prompt, store it in Chroma.

    python -m pose_db.build [--out DIR] [--seed S] [--actions a,b] [--variations N] [--chroma-url URL]
                            [--workers N] [--no-reuse]

An embedded index is built in a sibling folder and renamed into place only when complete, so a
crash or Ctrl-C mid-build leaves the previous index answering. On a Chroma server the build
writes a new generation of collections and then moves the manifest pointer (`index.py`).
Entries that users imported (source other than "synthetic") are carried into the new index.
The same specs and seed give the same entries. A lock file stops two builds of the same index
on one machine from racing; the app's first start waits on it instead (`ensure_index`).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import json
import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from pose_db.library.pool import GateCounts, action_ids, generate_entries, pool_size
from pose_db.prompt.rules import VOCAB_PATH, RuleNormalizer
from pose_db.scene.entry import LibraryEntry
from pose_db.scene.model import PoseError

from .embedder import Embedder, EmbedThreads
from .integrity import IndexDamaged
from .store import (
    IndexMissing,
    PoseIndex,
    connect,
    default_name,
    entry_from_record,
    resolve_url,
)
from .swap import (  # noqa: F401 (re-exported)
    MANIFEST_FILE,
    BuildBusy,
    build_lock,
    check_folder,
    index_folder,
    publish_folder,
    recover_interrupted_swap,
    staged_folder,
)

log = logging.getLogger(__name__)

REPORT_FILE = "build_report.json"
CENTROID_BLEND = 1.0  # weight of an action's centroid in each of its entries' vectors
_BATCH = 256  # entries per embed + insert step (the embedder sorts each step's prompts by length)
_BYTES_PER_ENTRY = 8_000  # disk a generation needs per entry (measured ~6.3 kB: 57 MB for 9,000)


@dataclass
class BuildReport:
    """What a build did and where its time went; logged, kept as `index.build_report` and, for a
    folder, saved as ``build_report.json`` in it.

    ``load_s`` is loading the embedding model, ``wait_s`` time the embedder waited for the
    generator, ``embed_s`` time in the embedder,
    ``store_s`` time writing to Chroma; ``reused`` counts prompts whose vector came from the
    previous index (same model) instead of the model.
    """

    entries: int = 0
    imported: int = 0
    reused: int = 0
    embedded: int = 0
    workers: int = 0
    elapsed_s: float = 0.0
    load_s: float = 0.0
    wait_s: float = 0.0
    embed_s: float = 0.0
    store_s: float = 0.0
    gate: dict | None = None

    def to_json(self) -> dict:
        return asdict(self)


def build_index(out: str | Path | None = None, *, url: str | None = None, name: str | None = None,
                seed: int = 0, actions: list[str] | None = None, variations: int = 30,
                specs_dir: str | Path | None = None, embedder: Embedder | None = None,
                entries: Iterable[LibraryEntry] | None = None, keep_imported: bool = True,
                progress: bool = True, wait: bool = False, workers: int | None = None,
                reuse_embeddings: bool = True) -> PoseIndex:
    """Build (or rebuild) the pose index and return it, opened (its `build_report` filled in).

    Args:
        out: embedded index folder (default ``ASTRA_POSE_INDEX`` or the cache folder).
        url: a Chroma server URL instead of a folder (default ``ASTRA_CHROMA_URL`` unless `out` is given).
        name: the library's collection name prefix (default ``ASTRA_CHROMA_COLLECTION`` or astra_poses).
        seed, actions, variations, specs_dir: passed to `generate_library`.
        embedder: the prompt embedder (default MiniLM).
        entries: build from these entries instead of generating the library.
        keep_imported: carry entries imported from real data over from the previous index.
        progress: show a progress bar (on stderr, so it lands in the app's log).
        wait: wait for a concurrent build to finish instead of raising `BuildBusy`.
        workers: processes generating the library (default: one per core but one; 0: none).
        reuse_embeddings: take the vector of a prompt the previous index already holds (same
            model) instead of embedding it again: a rebuild after editing a few specs is fast.
    """
    url = resolve_url(out, url)
    if not url:
        check_folder(index_folder(out))  # before any model is loaded: bad input fails fast
    with build_lock(url, name, out, wait=wait):
        return _build(out, url, name, seed=seed, actions=actions, variations=variations, specs_dir=specs_dir,
                      embedder=embedder, entries=entries, keep_imported=keep_imported, progress=progress,
                      workers=workers, reuse_embeddings=reuse_embeddings)


def ensure_index(path: str | Path | None = None, *, url: str | None = None, name: str | None = None,
                 embedder: Embedder | None = None, **build_options) -> PoseIndex:
    """The index at path/url, built first (with progress in the log) when there is none yet.

    Several app replicas starting at once on one machine wait for the first one's build.
    """
    url = resolve_url(path, url)
    try:
        return PoseIndex.open(path, url, name)
    except IndexMissing:
        pass
    with build_lock(url, name, path, wait=True):
        if not url:
            recover_interrupted_swap(index_folder(path))
        try:
            return PoseIndex.open(path, url, name)  # another process built it while we waited
        except IndexMissing:
            log.info("No pose index yet: building it now (a few minutes on 2 cores; this happens once).")
        return _build(path, url, name, embedder=embedder, **build_options)


def fill(index: PoseIndex, entries: Iterable[LibraryEntry], embedder: Embedder, *, total: int | None = None,
         progress: bool = True, desc: str = "Building pose index", report: BuildReport | None = None,
         known: dict[str, np.ndarray] | None = None, known_groups: dict[str, frozenset[str]] | None = None,
         on_embedded: Callable[[int, float], None] | None = None) -> int:
    """Embed and add `entries` to `index` in batches; returns how many were added.

    A synthetic action's entries must arrive together (the library generates action by action):
    each one's vector is blended with its action's centroid (see `blend_with_centroid`).

    Args:
        total: entries expected, for the progress bar and the log.
        progress: show a tqdm bar on stderr (progress is logged at INFO either way).
        report: times and counts are added to it.
        known: prompt -> vector from an earlier index of the same model and text form; those
            skip the model (a synthetic action's only when `known_groups` shows it unchanged).
        known_groups: action -> its prompts in that earlier index.
        on_embedded: told (texts, seconds) after each embedding step.
    """
    from tqdm import tqdm

    report = report if report is not None else BuildReport()
    added, seen, logged = 0, set(), 0
    step = max(total // 10, 1) if total else 1000
    with tqdm(total=total, unit="entry", desc=desc, disable=not progress, mininterval=1.0,
              file=sys.stderr, dynamic_ncols=True) as bar:
        batches = _action_batches(entries, _BATCH)
        while True:
            tick = time.perf_counter()
            batch = next(batches, None)
            report.wait_s += time.perf_counter() - tick
            if batch is None:
                break
            repeated = seen.intersection(e.id for e in batch)  # index.add checks within the batch
            if repeated:
                raise PoseError(f"Entry ids must be unique; repeated: {sorted(repeated)[:5]}. Give each entry its own id.")
            seen.update(e.id for e in batch)
            tick = time.perf_counter()
            embedded = report.embedded
            vectors = _vectors(batch, embedder, known, known_groups, report)
            seconds = time.perf_counter() - tick
            report.embed_s += seconds
            if on_embedded is not None and report.embedded > embedded:
                on_embedded(report.embedded - embedded, seconds)
            tick = time.perf_counter()
            index.add(batch, vectors)
            report.store_s += time.perf_counter() - tick
            added += len(batch)
            bar.update(len(batch))
            if added - logged >= step:
                logged = added
                log.info("%s: %d%s entries", desc, added, f"/{total}" if total else "")
    return added


@functools.lru_cache(maxsize=1)
def _normalizer() -> RuleNormalizer:
    return RuleNormalizer()


@functools.lru_cache(maxsize=1)
def text_form() -> str:
    """What a prompt's vector is made from, recorded in the manifest: vectors are reused across
    builds only when it matches (a new normaliser vocabulary re-embeds everything)."""
    return (f"rules-normalised+centroid{CENTROID_BLEND:g}:"
            + hashlib.sha256(VOCAB_PATH.read_bytes()).hexdigest()[:12])


def embedded_text(prompt: str) -> str:
    """The text the index embeds for a library prompt: its pose-defining core, normalised by the
    same rules as a query (RAG-Pose compares canonical pose descriptions on both sides; scenery
    and camera words in a library prompt would otherwise pull queries towards places)."""
    return _normalizer().normalize(prompt) or prompt


def blend_with_centroid(vectors: np.ndarray, weight: float | None = None) -> np.ndarray:
    """One action's prompt vectors, each pulled towards the action's centroid and renormalised.

    A library prompt carries a random cast ("a heavyset woman", "a chef") that a user's
    paraphrase does not share; the centroid of the action's ~30 prompts is what they have in
    common. Blending keeps each entry's own attributes (age, build) for ranking within the
    action while matching across actions by the action itself (`benchmarks/retrieval_quality.py
    --centroid-blend` measured it: paraphrase R@1 0.80 -> 0.88 before it was built in).
    """
    weight = CENTROID_BLEND if weight is None else weight
    blended = vectors + weight * vectors.mean(axis=0, keepdims=True)
    return (blended / np.linalg.norm(blended, axis=1, keepdims=True)).astype(np.float32)


def _action_batches(entries: Iterable[LibraryEntry], size: int) -> Iterator[list[LibraryEntry]]:
    """About `size` entries at a time, never splitting an action's run of entries."""
    batch: list[LibraryEntry] = []
    for entry in entries:
        if len(batch) >= size and entry.action != batch[-1].action:
            yield batch
            batch = []
        batch.append(entry)
    if batch:
        yield batch


def _groups(batch: list[LibraryEntry]) -> list[list[int]]:
    """Index runs to embed together: a synthetic action's entries, or one imported entry."""
    groups: list[list[int]] = []
    for i, entry in enumerate(batch):
        previous = batch[i - 1] if i else None
        if (entry.source == "synthetic" and previous is not None and previous.source == "synthetic"
                and previous.action == entry.action):
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def _vectors(batch: list[LibraryEntry], embedder: Embedder, known: dict[str, np.ndarray] | None,
             known_groups: dict[str, frozenset[str]] | None, report: BuildReport) -> np.ndarray:
    out: list[np.ndarray | None] = [None] * len(batch)
    fresh: list[list[int]] = []
    for group in _groups(batch):
        prompts = [batch[i].prompt for i in group]
        first = batch[group[0]]
        unchanged = bool(known) and all(p in known for p in prompts) and (
            first.source != "synthetic" or (known_groups or {}).get(first.action) == frozenset(prompts))
        if unchanged:
            for i in group:
                out[i] = known[batch[i].prompt]
            report.reused += len(group)
        else:
            fresh.append(group)
    todo = [i for group in fresh for i in group]
    if todo:
        raw = dict(zip(todo, embedder.encode([embedded_text(batch[i].prompt) for i in todo])))
        report.embedded += len(todo)
        for group in fresh:
            vectors = np.stack([raw[i] for i in group])
            if batch[group[0]].source == "synthetic":
                vectors = blend_with_centroid(vectors)
            for i, vector in zip(group, vectors):
                out[i] = vector
    return np.stack(out).astype(np.float32, copy=False)


def _build(out: str | Path | None, url: str | None, name: str | None, *, seed: int = 0,
           actions: list[str] | None = None, variations: int = 30, specs_dir: str | Path | None = None,
           embedder: Embedder | None = None, entries: Iterable[LibraryEntry] | None = None,
           keep_imported: bool = True, progress: bool = True, workers: int | None = None,
           reuse_embeddings: bool = True) -> PoseIndex:
    """build_index's work, with the lock already held."""
    name = name or default_name()
    embedder = embedder or Embedder()
    report, gate = BuildReport(), None
    if entries is None:
        ids = action_ids(specs_dir, actions)  # SpecError now, before the model loads
        report.workers = pool_size(len(ids), workers)
        gate = GateCounts()
        threads = EmbedThreads(report.workers)
        entries = generate_entries(ids, specs_dir=specs_dir, seed=seed, variations=variations,
                                   workers=report.workers, gate=gate, on_generated=threads.generated)
        total = len(ids) * variations
    else:
        threads = EmbedThreads(0)
        total = len(entries) if hasattr(entries, "__len__") else None
    tick = time.perf_counter()
    embedder.dimension  # noqa: B018  (loads the model now, so its time is reported apart)
    report.load_s = time.perf_counter() - tick
    info = {"seed": int(seed), "variations": int(variations), "actions": ",".join(actions or []),
            "text_form": text_form()}
    job = _Job(name, entries, total, embedder, keep_imported, progress, info, report, gate, reuse_embeddings, threads)
    if url:
        return _build_on_server(url, job)
    return _build_in_folder(index_folder(out), job)


@dataclass
class _Job:
    name: str
    entries: Iterable[LibraryEntry]
    total: int | None
    embedder: Embedder
    keep_imported: bool
    progress: bool
    info: dict
    report: BuildReport
    gate: GateCounts | None
    reuse_embeddings: bool
    threads: EmbedThreads


# -- embedded folder --------------------------------------------------------------------------


def _build_in_folder(out: Path, job: _Job) -> PoseIndex:
    started = time.perf_counter()
    previous = _previous(out, None, job)
    need = (int(job.total or 0) + len(previous)) * _BYTES_PER_ENTRY
    with staged_folder(out, need_bytes=need) as staging:
        index = PoseIndex.create(connect(staging), model=job.embedder.name, dimension=job.embedder.dimension,
                                 name=job.name, location=str(out), **job.info)
        _fill_all(index, job, previous)
        _finish_report(job, started, str(out))
        (staging / REPORT_FILE).write_text(json.dumps(job.report.to_json(), indent=2) + "\n")
        publish_folder(index, staging)
    done = PoseIndex.open(out, url="", name=job.name)
    done.build_report = job.report
    return done


# -- Chroma server ----------------------------------------------------------------------------


def _build_on_server(url: str, job: _Job) -> PoseIndex:
    started = time.perf_counter()
    client = connect(url=url)
    previous = _previous(None, url, job)
    index = PoseIndex.create(client, model=job.embedder.name, dimension=job.embedder.dimension, name=job.name,
                             location=f"{url} (collection {job.name})", url=url, **job.info)
    try:
        _fill_all(index, job, previous)
    except BaseException:  # readers still see the previous generation; drop our partial one
        for n in index.people_counts:
            with contextlib.suppress(Exception):
                client.delete_collection(index._collection_name(n))
        raise
    index.publish()
    _finish_report(job, started, index.location)
    index.build_report = job.report
    return index


# -- shared -----------------------------------------------------------------------------------


def _previous(path: Path | None, url: str | None, job: _Job) -> list[dict]:
    """The previous index's records (with vectors) when they are needed: to carry imported
    entries over, or to reuse the vectors of prompts it already embedded with the same model."""
    if not (job.keep_imported or job.reuse_embeddings):
        return []
    try:
        previous = PoseIndex.open(path, url or "", job.name)
    except IndexMissing:
        return []
    except IndexDamaged as error:  # the rebuild is the cure: start from the library alone
        log.warning("%s Building a fresh index without it (imported entries it held are not carried over).",
                    error)
        return []
    try:
        same_model = (previous.model == job.embedder.name and previous.dimension == job.embedder.dimension
                      and previous.manifest.get("text_form") == text_form())
        if not (job.keep_imported or same_model):
            return []
        return [r | {"same_model": same_model} for r in previous.records(include_embeddings=True)]
    finally:
        if path is not None:
            previous.close()


def _fill_all(index: PoseIndex, job: _Job, previous: list[dict]) -> None:
    """The new entries, then the imported ones carried over from the previous index."""
    known = {r["prompt"]: r["embedding"] for r in previous if r["same_model"]} if job.reuse_embeddings else None
    groups: dict[str, set[str]] = {}
    for r in previous:
        if r["metadata"]["source"] == "synthetic":
            groups.setdefault(r["metadata"]["action"], set()).add(r["prompt"])
    known_groups = {action: frozenset(prompts) for action, prompts in groups.items()}
    job.threads.start()
    try:
        job.report.entries = fill(index, job.entries, job.embedder, total=job.total, progress=job.progress,
                                  report=job.report, known=known, known_groups=known_groups,
                                  on_embedded=job.threads.observe)
    finally:
        job.threads.stop()
    if not job.keep_imported:
        return
    carried = [r for r in previous if r["metadata"]["source"] != "synthetic"]
    if carried:
        imported = [entry_from_record(r) for r in carried]
        known = {r["prompt"]: r["embedding"] for r in carried if r["same_model"]}
        job.report.imported = fill(index, imported, job.embedder, progress=False, report=job.report, known=known,
                                   desc="Keeping imported entries")
        log.info("Kept %d imported entries from the previous index.", job.report.imported)


def _finish_report(job: _Job, started: float, where: str) -> None:
    report = job.report
    report.elapsed_s = time.perf_counter() - started
    if job.gate is not None:
        report.gate = job.gate.to_json()
        log.info(job.gate.summary())
        if job.gate.short_actions:
            log.info("Actions short of their %s entries: %s", job.info["variations"], job.gate.short_actions)
    added = report.entries + report.imported
    log.info("Pose index ready at %s: %d entries in %.1f s (%.0f entries/s; %d embedded, %d reused; "
             "%.1f s embedding, %.1f s storing, %.1f s waiting for the generator; model loaded in %.1f s before).",
             where, added, report.elapsed_s, added / max(report.elapsed_s, 1e-9), report.embedded, report.reused,
             report.embed_s, report.store_s, report.wait_s, report.load_s)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pose_db.build", description="Build the RAG-Pose index.")
    parser.add_argument("--out", type=Path, help="index folder (default: $ASTRA_POSE_INDEX or the cache folder)")
    parser.add_argument("--chroma-url", default=None, help="build on this Chroma server instead (default: $ASTRA_CHROMA_URL)")
    parser.add_argument("--name", default=None, help="collection name prefix (default: $ASTRA_CHROMA_COLLECTION or astra_poses)")
    parser.add_argument("--seed", type=int, default=0, help="library seed; the same seed gives the same entries")
    parser.add_argument("--actions", default=None, help="comma-separated action ids (default: all)")
    parser.add_argument("--variations", type=int, default=30, help="entries per action (default 30)")
    parser.add_argument("--specs", type=Path, default=None, help="action spec folder (default: the package's)")
    parser.add_argument("--drop-imported", action="store_true", help="do not carry imported entries over")
    parser.add_argument("--workers", type=int, default=None,
                        help="processes generating the library (default: $ASTRA_BUILD_WORKERS or cores - 1)")
    parser.add_argument("--no-reuse", action="store_true", help="embed every prompt again, even if unchanged")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.out is not None and args.chroma_url:
        parser.error("give either --out (an embedded folder) or --chroma-url (a server), not both")
    if args.variations < 1:
        parser.error("--variations must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    actions = [a.strip() for a in args.actions.split(",") if a.strip()] if args.actions else None
    try:
        index = build_index(args.out, url=args.chroma_url, name=args.name, seed=args.seed, actions=actions,
                            variations=args.variations, specs_dir=args.specs,
                            keep_imported=not args.drop_imported, progress=not args.quiet, workers=args.workers,
                            reuse_embeddings=not args.no_reuse)
    except KeyboardInterrupt:
        print("Interrupted: the previous index (if any) is unchanged.", file=sys.stderr)
        return 130
    except (PoseError, ValueError) as error:  # SpecError is a ValueError with a what-to-fix message
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{index.count()} entries in {index.location}")
    return 0
