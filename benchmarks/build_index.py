"""Benchmark the pose index build: full build time, entries/s, size on disk, gate counts, and
the build's embedding throughput against plain sentence-transformers `encode` on the same texts.

    python benchmarks/build_index.py [--out DIR] [--actions a,b] [--variations 30] [--encode-texts 2048]
                                     [--repeats 3] [--rebuild] [--json-out FILE]

The full build runs once (it takes minutes); the embedding comparison runs `--repeats` times,
interleaved (ours, plain, ours, plain, ...) in this same process on the same prompts, and the
medians are reported with their ratio. `--rebuild` also times a second build into the same
folder, which reuses the vectors of unchanged prompts.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pose_db.index.build import _BATCH, build_index  # noqa: E402
from pose_db.index.embedder import Embedder  # noqa: E402
from pose_db.index.stats import index_stats  # noqa: E402


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def encode_comparison(texts: list[str], repeats: int) -> dict:
    """Texts/s of the build's embedding step (`Embedder.encode` in build-sized steps, no cache)
    and of plain `SentenceTransformer.encode` (its defaults, normalised) on the same texts, and
    the largest difference between their vectors."""
    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer

    from pose_db.index.embedder import packaged_model_dir

    ours = Embedder(cache_size=0)
    plain = SentenceTransformer(packaged_model_dir() or ours.model_path, device="cpu")
    diff = float(np.abs(ours.encode(texts[:64]) - plain.encode(texts[:64], normalize_embeddings=True)).max())
    times = {"build": [], "plain": []}
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(0, len(texts), _BATCH):
            ours.encode(texts[i:i + _BATCH])
        times["build"].append(time.perf_counter() - start)
        start = time.perf_counter()
        plain.encode(texts, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
        times["plain"].append(time.perf_counter() - start)
    build, plain_s = statistics.median(times["build"]), statistics.median(times["plain"])
    return {"texts": len(texts), "repeats": repeats, "torch_threads": torch.get_num_threads(),
            "runner": type(ours.model).__name__, "max_abs_diff": diff,
            "build_texts_per_s": len(texts) / build, "plain_texts_per_s": len(texts) / plain_s,
            "ratio_build_over_plain": plain_s / build,
            "build_s_runs": [round(t, 2) for t in times["build"]], "plain_s_runs": [round(t, 2) for t in times["plain"]]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=None, help="build here (default: a temporary folder)")
    parser.add_argument("--actions", default=None, help="comma-separated action ids (default: all)")
    parser.add_argument("--variations", type=int, default=30)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--encode-texts", type=int, default=2048, help="prompts in the encode comparison")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rebuild", action="store_true", help="also time a rebuild into the same folder")
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")  # the build's own report lines
    actions = args.actions.split(",") if args.actions else None
    result: dict = {"cpus": os.cpu_count(), "load_avg_before": os.getloadavg()}
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "pose_index"
        embedder = Embedder()
        start = time.perf_counter()
        embedder.encode(["warm-up"])
        result["model_load_s"] = time.perf_counter() - start  # torch import and weights, no sentence-transformers
        start = time.perf_counter()
        index = build_index(out, url="", actions=actions, variations=args.variations, embedder=embedder,
                            workers=args.workers, keep_imported=False, reuse_embeddings=False, progress=True)
        elapsed = time.perf_counter() - start
        report = index.build_report
        records = list(index.records())
        texts = [r["prompt"] for r in records]
        result["stats"] = index_stats(records)
        result["build"] = {
            "entries": index.count(), "elapsed_s": elapsed, "entries_per_s": index.count() / elapsed,
            "size_bytes": folder_size(out), "workers": report.workers, "embed_s": report.embed_s,
            "store_s": report.store_s, "wait_for_generator_s": report.wait_s,
            "build_embed_texts_per_s": report.embedded / max(report.embed_s, 1e-9), "gate": report.gate,
        }
        index.close()
        if args.rebuild:
            start = time.perf_counter()
            again = build_index(out, url="", actions=actions, variations=args.variations, embedder=embedder,
                                workers=args.workers, progress=False)
            result["rebuild"] = {"elapsed_s": time.perf_counter() - start, "reused": again.build_report.reused,
                                 "embedded": again.build_report.embedded}
            again.close()
        step = max(1, len(texts) // max(args.encode_texts, 1))
        result["encode"] = encode_comparison(texts[::step][:args.encode_texts], args.repeats)
    result["load_avg_after"] = os.getloadavg()
    build = result["build"]
    print(f"build: {build['entries']} entries in {build['elapsed_s']:.1f} s = {build['entries_per_s']:.1f} entries/s "
          f"({build['workers']} generator workers; {build['embed_s']:.1f} s embedding, {build['store_s']:.1f} s "
          f"storing, {build['wait_for_generator_s']:.1f} s waiting for the generator)")
    print(f"stats: {json.dumps(result['stats'])}")
    print(f"index size on disk: {build['size_bytes'] / 2**20:.1f} MiB")
    gate = build["gate"] or {}
    print(f"gate: {gate.get('checked')} candidates, {gate.get('kept')} kept, rejected {gate.get('rejected')}, "
          f"short actions {len(gate.get('short_actions', {}))}")
    if "rebuild" in result:
        print(f"rebuild (reusing vectors): {result['rebuild']['elapsed_s']:.1f} s, {result['rebuild']['reused']} reused")
    enc = result["encode"]
    print(f"embedding, {enc['texts']} prompts x {enc['repeats']} (medians, {enc['torch_threads']} torch threads): "
          f"build ({enc['runner']}) {enc['build_texts_per_s']:.0f}/s, plain sentence-transformers "
          f"{enc['plain_texts_per_s']:.0f}/s, ratio {enc['ratio_build_over_plain']:.2f}, max |diff| "
          f"{enc['max_abs_diff']:.1e}; inside the build {build['build_embed_texts_per_s']:.0f}/s; "
          f"model load {result['model_load_s']:.1f} s")
    print(f"load average before {result['load_avg_before']}, after {result['load_avg_after']}")
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
