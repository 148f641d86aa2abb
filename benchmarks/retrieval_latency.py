"""RAG-Pose latency: end-to-end queries on the real library, and search-only at 100k / 1M entries.

    python benchmarks/retrieval_latency.py [--quick] [--skip-e2e] [--skip-synthetic]
        [--sizes 100000 1000000] [--chroma-max 100000] [--json OUT.json]
        [--baseline-retriever OLD/pose_db/retrieval/retriever.py]

1. End to end (rules normaliser + MiniLM embedding + index search + gate + diversify) over 500
   distinct prompts on the real library index ($ASTRA_POSE_INDEX, built when missing), with the
   embedding cache off (every query pays the model) and, separately, repeated prompts (cache on).
2. Search only, on synthetic random unit vectors with a people count (1: 70 %, 2: 20 %, 3: 10 %),
   top-48 candidates as the retriever asks for, with and without a people filter:
   - Chroma (the product's index): a single collection with a `where` filter, and one
     collection per people count (the partitioned layout). Sizes up to --chroma-max, because
     Chroma inserts ~700 vectors/s on 2 cores (1M would take ~25 min).
   - `IVFMatrixIndex`, an exact-then-approximate numpy backend designed for 1M: k-means lists,
     contiguous per list, probe the nearest lists. Its recall@10 against exact search is
     measured on clustered vectors (random unit vectors have no neighbours worth finding).
   Build time and memory are reported for every backend and size.
Medians and p99 of single-query wall times (time.perf_counter), after warm-up.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PEOPLE_SHARE = {1: 0.7, 2: 0.2, 3: 0.1}
CANDIDATES = 48


def percentiles(seconds: list[float]) -> dict:
    ms = np.asarray(seconds) * 1e3
    return {"p50_ms": round(float(np.percentile(ms, 50)), 3), "p99_ms": round(float(np.percentile(ms, 99)), 3), "n": len(ms)}


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


# -- 1. end to end ------------------------------------------------------------------------------


def query_prompts(n: int) -> list[str]:
    """n distinct prompts: the eval sets, then noisy variants of the library's prompts."""
    data = ROOT / "benchmarks" / "data"
    prompts = []
    for path in sorted(data.glob("*.jsonl")) + [ROOT.parent / "shared" / "eval" / "retrieval_dev.jsonl"]:
        if path.exists():
            prompts += [json.loads(l)["prompt"] for l in path.read_text().splitlines() if l.strip()]
    from pose_db.library.generate import generate_library

    noise = ["cinematic photo, {}", "{}, golden hour, 8k", "35mm film: {} at the beach", "{}, bokeh, f/1.8"]
    for i, entry in enumerate(generate_library(variations=3)):
        prompts.append(noise[i % len(noise)].format(entry.prompt))
        if len(set(prompts)) >= n:
            break
    return list(dict.fromkeys(prompts))[:n]


def bench_end_to_end(n: int) -> dict:
    from pose_db.retrieval.retriever import PoseRetriever

    t0 = time.perf_counter()
    retriever = PoseRetriever.open()  # build the index first: python -m pose_db.build
    load_s = time.perf_counter() - t0
    prompts = query_prompts(n)
    for p in prompts[:20]:  # warm-up: first calls pay allocation and thread-pool start
        retriever.retrieve(p)
    embedder = retriever.embedder
    embed_cache = getattr(embedder, "cache_size", None)
    if embed_cache is not None:  # the embedder's own cache would hide the model's cost
        embedder.cache_size = 0
        embedder._cache.clear()
    retriever._cache_size = 0
    retriever._cache.clear()
    cold, normalise = [], []
    for p in prompts:
        t = time.perf_counter()
        retriever.retrieve(p)
        cold.append(time.perf_counter() - t)
        t = time.perf_counter()
        retriever.normalizer.normalize(p)
        normalise.append(time.perf_counter() - t)
    embed, vectors = [], []
    for p in prompts[:200]:
        t = time.perf_counter()
        vectors.append(embedder.encode([retriever.normalizer.normalize(p)])[0])
        embed.append(time.perf_counter() - t)
    search = {}
    for label, people in (("any_people", None), ("people_1", 1), ("people_2", 2)):
        times = []
        for v in vectors:
            t = time.perf_counter()
            retriever.index.search(v, retriever.candidates, people=people)
            times.append(time.perf_counter() - t)
        search[label] = percentiles(times)
    if embed_cache is not None:
        embedder.cache_size = embed_cache
    retriever._cache_size = 512
    for p in prompts[:100]:
        retriever.retrieve(p)
    cached = []
    for p in prompts[:100]:
        t = time.perf_counter()
        retriever.retrieve(p)
        cached.append(time.perf_counter() - t)
    return {
        "library_entries": retriever.index.count(),
        "candidates": retriever.candidates,
        "open_s": round(load_s, 2),
        "end_to_end_uncached": percentiles(cold),
        "end_to_end_cached_embedding": percentiles(cached),
        "normalise_only": percentiles(normalise),
        "embed_only": percentiles(embed),
        "index_search_only": search,
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }


def bench_against(baseline: Path, n: int) -> dict:
    """Interleaved A/B in one process: the retriever module at `baseline` (e.g. a `git archive` of
    an older commit's pose_db/retrieval/retriever.py) against this tree's, on the same index and
    embedder with every cache off, each prompt timed on both in alternating order, so machine
    load falls on both alike. The baseline module imports this tree's prompt and index code."""
    import importlib.util

    from pose_db.retrieval.retriever import PoseRetriever

    spec = importlib.util.spec_from_file_location("baseline_retriever", baseline)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    new = PoseRetriever.open()
    old = module.PoseRetriever(new.index, new.embedder)
    if getattr(new.embedder, "cache_size", None) is not None:
        new.embedder.cache_size = 0
        new.embedder._cache.clear()
    prompts = query_prompts(n)
    for p in prompts[:20]:
        new.retrieve(p), old.retrieve(p)
    times = {"baseline": [], "this_tree": []}
    for i, p in enumerate(prompts):
        pair = (("baseline", old), ("this_tree", new)) if i % 2 else (("this_tree", new), ("baseline", old))
        for name, retriever in pair:
            retriever._cache.clear()
            t = time.perf_counter()
            retriever.retrieve(p)
            times[name].append(time.perf_counter() - t)
    out = {name: percentiles(t) for name, t in times.items()}
    out["p50_ratio"] = round(out["this_tree"]["p50_ms"] / out["baseline"]["p50_ms"], 3)
    out["baseline_module"] = str(baseline)
    return out


# -- 2. search only -----------------------------------------------------------------------------


def synthetic(n: int, seed: int = 0, clustered: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """n unit vectors (random, or around n/100 centres like paraphrases of prompts) + people counts."""
    rng = np.random.default_rng(seed)
    people = rng.choice(list(PEOPLE_SHARE), size=n, p=list(PEOPLE_SHARE.values())).astype(np.int8)
    vectors = np.empty((n, 384), dtype=np.float32)
    centres = rng.standard_normal((max(n // 100, 1), 384)).astype(np.float32) if clustered else None
    for start in range(0, n, 100_000):
        block = rng.standard_normal((min(100_000, n - start), 384), dtype=np.float32)
        if clustered:
            block = centres[rng.integers(0, len(centres), len(block))] + 0.06 * block  # cos ~0.8 to its centre
        vectors[start : start + len(block)] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return vectors, people


def queries(vectors: np.ndarray, n: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    q = vectors[rng.integers(0, len(vectors), n)] + 0.03 * rng.standard_normal((n, 384), dtype=np.float32)
    return q / np.linalg.norm(q, axis=1, keepdims=True)


class IVFMatrixIndex:
    """Inverted-file search in numpy: the 1M-entry design (no faiss, no extra dependency).

    Spherical k-means splits the vectors into `n_lists` lists stored contiguously; a query
    scores the centroids, then only the `nprobe` nearest lists (views, no copy). People counts
    are filtered on the scanned rows; when too few survive, more lists are probed.
    """

    def __init__(self, vectors: np.ndarray, people: np.ndarray, n_lists: int = 1024, seed: int = 0, iters: int = 6):
        rng = np.random.default_rng(seed)
        sample = vectors[rng.choice(len(vectors), min(len(vectors), 64 * n_lists), replace=False)]
        centroids = sample[rng.choice(len(sample), n_lists, replace=False)].copy()
        for _ in range(iters):
            assign = np.argmax(sample @ centroids.T, axis=1)
            sums = np.zeros_like(centroids)
            np.add.at(sums, assign, sample)
            empty = np.bincount(assign, minlength=n_lists) == 0
            sums[empty] = centroids[empty]
            centroids = sums / np.linalg.norm(sums, axis=1, keepdims=True)
        assign = np.concatenate(
            [np.argmax(vectors[s : s + 65536] @ centroids.T, axis=1) for s in range(0, len(vectors), 65536)]
        )
        order = np.argsort(assign, kind="stable")
        self.centroids = centroids
        self.vectors = vectors[order]
        self.people = people[order]
        self.ids = order
        self.offsets = np.searchsorted(assign[order], np.arange(n_lists + 1))

    def search(self, q: np.ndarray, k: int, people: int | None = None, nprobe: int = 32) -> np.ndarray:
        nearest = np.argsort(-(self.centroids @ q))
        while True:
            rows, scores = [], []
            for lst in nearest[:nprobe]:
                a, b = self.offsets[lst], self.offsets[lst + 1]
                s = self.vectors[a:b] @ q
                idx = np.arange(a, b)
                if people is not None:
                    keep = self.people[a:b] == people
                    s, idx = s[keep], idx[keep]
                rows.append(idx)
                scores.append(s)
            s, idx = np.concatenate(scores), np.concatenate(rows)
            if len(s) >= k or nprobe >= len(nearest):
                break
            nprobe *= 2
        top = np.argpartition(-s, min(k, len(s)) - 1)[:k]
        return self.ids[idx[top[np.argsort(-s[top])]]]


def bench_ivf(n: int, n_queries: int) -> dict:
    vectors, people = synthetic(n)
    gc.collect()
    before = rss_mb()
    t = time.perf_counter()
    ivf = IVFMatrixIndex(vectors, people, n_lists=max(64, int(np.sqrt(n))))
    build_s = time.perf_counter() - t
    memory = (ivf.vectors.nbytes + ivf.people.nbytes + ivf.ids.nbytes + ivf.centroids.nbytes) / 2**20
    del vectors
    qs = queries(ivf.vectors, n_queries)
    out = {"entries": n, "build_s": round(build_s, 1), "index_memory_mb": round(memory, 1), "rss_growth_mb": round(rss_mb() - before, 1)}
    for label, flt in (("no_filter", None), ("people_1", 1), ("people_3", 3)):
        times = []
        for q in qs:
            t = time.perf_counter()
            ivf.search(q, CANDIDATES, people=flt)
            times.append(time.perf_counter() - t)
        out[label] = percentiles(times)
    exact = []
    for q in qs[:50]:
        t = time.perf_counter()
        np.argpartition(-(ivf.vectors @ q), CANDIDATES)[:CANDIDATES]
        exact.append(time.perf_counter() - t)
    out["exact_numpy_no_filter"] = percentiles(exact)
    del ivf
    gc.collect()
    out["recall@10_clustered"] = ivf_recall(n, 100)
    return out


def ivf_recall(n: int, n_queries: int) -> float:
    vectors, people = synthetic(n, seed=2, clustered=True)
    ivf = IVFMatrixIndex(vectors, people, n_lists=max(64, int(np.sqrt(n))))
    hits = 0
    for q in queries(vectors, n_queries, seed=3):
        truth = set(np.argpartition(-(vectors @ q), 10)[:10])
        hits += len(truth & set(ivf.search(q, 10)))
    return round(hits / (10 * n_queries), 4)


def bench_chroma(n: int, n_queries: int, layouts: tuple[str, ...] = ("single", "partitioned")) -> dict:
    import chromadb
    from chromadb.config import Settings

    vectors, people = synthetic(n)
    folder = Path(tempfile.mkdtemp(prefix="chroma-bench-"))
    try:
        client = chromadb.PersistentClient(path=str(folder), settings=Settings(anonymized_telemetry=False))
        batch = client.get_max_batch_size()
        cfg = {"hnsw": {"space": "cosine"}}
        single = client.create_collection("all", configuration=cfg, embedding_function=None)
        parts = {c: client.create_collection(f"people_{c}", configuration=cfg, embedding_function=None) for c in PEOPLE_SHARE}
        t = time.perf_counter()
        for s in range(0, n if "single" in layouts else 0, batch):
            e = min(n, s + batch)
            single.add(ids=[str(i) for i in range(s, e)], embeddings=vectors[s:e], metadatas=[{"people": int(p)} for p in people[s:e]])
        build_single = time.perf_counter() - t
        t = time.perf_counter()
        for c, col in parts.items() if "partitioned" in layouts else ():
            idx = np.flatnonzero(people == c)
            for s in range(0, len(idx), batch):
                chunk = idx[s : s + batch]
                col.add(ids=[str(i) for i in chunk], embeddings=vectors[chunk])
        build_parts = time.perf_counter() - t
        disk = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20
        qs = queries(vectors, n_queries)
        out = {"entries": n, "build_single_s": round(build_single, 1), "build_partitioned_s": round(build_parts, 1), "disk_mb_both": round(disk, 1)}

        def timed(fn) -> dict:
            times = []
            for q in qs:
                t = time.perf_counter()
                fn(q)
                times.append(time.perf_counter() - t)
            return percentiles(times)

        if "single" in layouts:
            out["single_no_filter"] = timed(lambda q: single.query(query_embeddings=[q], n_results=CANDIDATES))
            out["single_where_people_1"] = timed(lambda q: single.query(query_embeddings=[q], n_results=CANDIDATES, where={"people": 1}))
            out["single_where_people_3"] = timed(lambda q: single.query(query_embeddings=[q], n_results=CANDIDATES, where={"people": 3}))
        if "partitioned" in layouts:
            # No filter = what the retriever does when the people count is unknown: every partition.
            out["partitioned_all"] = timed(lambda q: [col.query(query_embeddings=[q], n_results=CANDIDATES) for col in parts.values()])
            out["partitioned_people_1"] = timed(lambda q: parts[1].query(query_embeddings=[q], n_results=CANDIDATES))
            out["partitioned_people_3"] = timed(lambda q: parts[3].query(query_embeddings=[q], n_results=CANDIDATES))
        return out
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes and few queries (a smoke run)")
    parser.add_argument("--skip-e2e", action="store_true")
    parser.add_argument("--skip-synthetic", action="store_true")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--chroma-max", type=int, default=100_000, help="largest size inserted into Chroma")
    parser.add_argument("--chroma-layouts", nargs="+", default=["single", "partitioned"],
                        choices=["single", "partitioned"], help="Chroma layouts to build and time")
    parser.add_argument("--skip-ivf", action="store_true", help="time Chroma only")
    parser.add_argument("--json", type=Path, help="also write the report here")
    parser.add_argument("--baseline-retriever", type=Path, metavar="RETRIEVER.py",
                        help="also time this retriever module against the tree's, interleaved (end to end, caches off)")
    args = parser.parse_args(argv)
    sizes = [10_000] if args.quick else args.sizes
    n_queries = 50 if args.quick else 200
    report: dict = {"cpu_count": os.cpu_count(), "load_average_before": [round(x, 2) for x in os.getloadavg()]}
    if not args.skip_e2e:
        report["end_to_end"] = bench_end_to_end(100 if args.quick else 500)
        print(json.dumps({"end_to_end": report["end_to_end"]}, indent=1), flush=True)
    if args.baseline_retriever:
        report["against_baseline"] = bench_against(args.baseline_retriever, 100 if args.quick else 300)
        print(json.dumps({"against_baseline": report["against_baseline"]}, indent=1), flush=True)
    if not args.skip_synthetic:
        for n in sizes:
            if not args.skip_ivf:
                report[f"ivf_numpy_{n}"] = bench_ivf(n, n_queries)
                print(json.dumps({f"ivf_numpy_{n}": report[f"ivf_numpy_{n}"]}, indent=1), flush=True)
            if n <= args.chroma_max:
                report[f"chroma_{n}"] = bench_chroma(n, n_queries, tuple(args.chroma_layouts))
                print(json.dumps({f"chroma_{n}": report[f"chroma_{n}"]}, indent=1), flush=True)
    report["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
