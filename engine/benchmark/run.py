"""Run a benchmark on the resident engine: generate, score, resume, shard, merge, contact sheet.

Each process (``accelerate launch`` sets ``RANK``/``WORLD_SIZE``; a plain run is rank 0 of 1)
takes the samples ``i`` with ``i % world == rank`` and appends one JSON line per finished sample
to ``<out>.part<rank>.jsonl``; generated images go to ``<out stem>_images/``. A rerun skips every
sample already in any part file. When all samples are done, the process that finishes last
merges the parts into ``<out>`` (per-sample rows and means) and draws the worst cases
(``<out stem>_worst.png``: target pose | generated | references).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from engine.benchmark.build import META_FILE
from engine.benchmark.metrics import (
    ClipScorer,
    DinoScorer,
    detection_score,
    keypoint_ap,
    match_oks,
    match_people,
)
from engine.errors import EngineError
from engine.request import GenerationRequest
from engine.train.dataset import validate_dataset
from pose_db.scene.model import CANVAS_MIN
from pose_db.scene.openpose_io import load_openpose, write_openpose
from pose_db.scene.render import render_pose_map
from pose_db.scene.transforms import fit_scene

METRICS = ("oks", "clip_i", "dino", "clip_t")


def shard() -> tuple[int, int]:
    """(rank, world size) from the launcher's environment (``accelerate launch``/torchrun)."""
    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    if not 0 <= rank < world:
        raise EngineError(f"RANK {rank} is outside WORLD_SIZE {world}.")
    return rank, world


def _paths(out: Path) -> tuple[Path, Path]:
    return out.parent / f"{out.stem}_images", out.parent / f"{out.stem}_worst.png"


def _part(out: Path, rank: int) -> Path:
    return out.parent / f"{out.name}.part{rank}.jsonl"


def finished(out: Path) -> dict[int, dict]:
    """Every finished sample in any part file of ``out`` (a torn last line is ignored)."""
    done: dict[int, dict] = {}
    for part in sorted(out.parent.glob(f"{out.name}.part*.jsonl")):
        for line in part.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            done[int(row["index"])] = row
    return done


def run_benchmark(bench: str | Path, out: str | Path, engine, *, detector=None, clip: ClipScorer | None = None,
                  dino: DinoScorer | None = None, resolution: int = 512, steps: int = 28, guidance: float = 3.5,
                  seed: int = 0, limit: int | None = None, rank: int = 0, world: int = 1, worst: int = 8,
                  log: Callable[[str], None] = print) -> dict | None:
    """Generate and score this process's slice of ``bench``; returns the merged results when
    every sample is done (else None: other shards are still running)."""
    bench, out = Path(bench), Path(out)
    records, _ = validate_dataset(bench, resolution=resolution)
    meta_path = bench / META_FILE
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {"kind": "custom", "samples": []}
    total = len(records) if limit is None else min(limit, len(records))
    info = engine.info()
    if info.kind == "tiny":
        log(f"NOTE: {info.message}; the scores below only show the plumbing.")
    images_dir, _ = _paths(out)
    images_dir.mkdir(parents=True, exist_ok=True)
    done = finished(out)
    mine = [i for i in range(total) if i % world == rank and i not in done]
    log(f"[{rank}/{world}] {len(done)} of {total} samples already done; {len(mine)} to run here.")
    started = time.perf_counter()
    part_path = _part(out, rank)
    if part_path.is_file() and part_path.stat().st_size and not part_path.read_bytes().endswith(b"\n"):
        with part_path.open("a") as part:  # a line torn by an interruption: end it, so the next one parses
            part.write("\n")
    with part_path.open("a") as part:
        for k, i in enumerate(mine):
            row = _run_one(i, records[i], meta, engine, detector, clip, dino, images_dir, out.parent,
                           steps=steps, guidance=guidance, seed=seed)
            part.write(json.dumps(row) + "\n")
            part.flush()
            rate = (time.perf_counter() - started) / (k + 1)
            log(f"[{rank}/{world}] {k + 1}/{len(mine)} sample {i}: "
                + " ".join(f"{m}={row[m]:.4f}" for m in METRICS if row.get(m) is not None)
                + f" ({rate:.1f}s/sample, ~{rate * (len(mine) - k - 1):.0f}s left)")
    done = finished(out)
    if any(i not in done for i in range(total)):
        log(f"[{rank}/{world}] slice finished; {sum(i in done for i in range(total))}/{total} done overall, "
            "the last shard to finish merges.")
        return None
    return merge(out, bench, [done[i] for i in range(total)], asdict(info), meta.get("kind", "custom"),
                 worst=worst)


def _run_one(i: int, record, meta: dict, engine, detector, clip, dino, images_dir: Path, root: Path, *,
             steps: int, guidance: float, seed: int) -> dict:
    width, height = record.bucket
    if record.pose is not None and min(width, height) < CANVAS_MIN:
        raise EngineError(f"Sample {i}: --resolution gives {width}x{height}, below the pose canvas minimum of "
                          f"{CANVAS_MIN} px; raise --resolution.")
    refs = [Image.open(r.image).convert("RGB") for r in record.references]
    names = [r.name for r in record.references]
    extra = meta["samples"][i] if i < len(meta.get("samples", [])) else {}
    scene = gt = scale = None
    if record.pose is not None:
        scene = load_openpose(record.pose)
        gt = fit_scene(scene, width, height)
        scale = min(width / scene.width, height / scene.height)
    request = GenerationRequest(prompt=record.prompt, subjects=refs,
                                subject_names=[n or "" for n in names] if any(names) else [],
                                pose=write_openpose(gt) if gt is not None else None, width=width, height=height,
                                num_inference_steps=steps, guidance_scale=guidance, seed=seed + i)
    result = engine.generate(request)
    image = result.image.convert("RGB")
    image_path = images_dir / f"{i:05d}.png"
    image.save(image_path)
    row: dict[str, Any] = {"index": i, "line": record.line, "prompt": record.prompt,
                           "image": os.path.relpath(image_path, root), "seed": seed + i,
                           "size": [width, height], "elapsed_s": round(result.elapsed_s, 3)}
    row.update({m: None for m in (*METRICS, "oks_unmapped")})
    if gt is not None and detector is not None:
        found = detector.detect(image)
        if (found.width, found.height) != (width, height):
            found = fit_scene(found, width, height)
        raw_areas = extra.get("areas") or None
        if raw_areas is not None and len(raw_areas) != len(gt.people):
            raw_areas = None
        areas = [a * scale * scale if a else None for a in raw_areas] if raw_areas else None
        row.update(match_oks(gt, found, areas).as_dict())
        row["detected"] = len(found.people)
        row["det_scores"] = [detection_score(p) for p in found.people]
        # the "unmapped frame" variant: the truth in its photo's pixels against the generated image's
        row["oks_unmapped"] = match_people(scene.people, found.people, raw_areas).score
    if clip is not None:
        row["clip_i"], row["clip_t"] = clip.clip_i(image, refs), clip.clip_t(image, record.prompt)
    if dino is not None:
        row["dino"] = dino.dino(image, refs)
    row["references"] = [os.path.relpath(r.image, root) for r in record.references]
    row["pose"] = os.path.relpath(record.pose, root) if record.pose else None
    return row


def _mean(rows: list[dict], key: str) -> float | None:
    values = [r[key] for r in rows if r.get(key) is not None]
    return float(np.mean(values)) if values else None


def merge(out: Path, bench: Path, rows: list[dict], info: dict, kind: str, worst: int = 8) -> dict:
    means = {m: _mean(rows, m) for m in METRICS}
    scored = [(r["oks_matrix"], r["det_scores"]) for r in rows if r.get("oks_matrix") is not None]
    # candidate readings of the paper's OKS 0.0452 (README, "Why the paper's OKS ..."), beside ours
    variants = {"keypoint_ap": keypoint_ap(scored) if scored else None, "oks_unmapped": _mean(rows, "oks_unmapped")}
    results = {"bench": str(bench), "kind": kind, "n": len(rows), "engine": info,
               "mode": info.get("mode"), "adapter": info.get("adapter") or info.get("uno_lora"),
               "noise": info.get("kind") == "tiny", "metrics": means, "variants": variants,
               "missing": sum(r.get("missing") or 0 for r in rows), "extra": sum(r.get("extra") or 0 for r in rows),
               "samples": rows}
    tmp = out.parent / f".{out.name}.tmp{os.getpid()}"
    tmp.write_text(json.dumps(results, indent=1))
    tmp.replace(out)
    _, sheet = _paths(out)
    worst_sheet(rows, out.parent, sheet, worst)
    return results


def worst_sheet(rows: list[dict], root: Path, path: Path, count: int, cell: int = 128) -> Path | None:
    """PNG rows of the lowest-scoring samples (by OKS, else CLIP-I): target pose | generated | refs."""
    key = next((m for m in ("oks", "clip_i", "dino", "clip_t") if any(r.get(m) is not None for r in rows)), None)
    if key is None or count <= 0:
        return None
    chosen = sorted((r for r in rows if r.get(key) is not None), key=lambda r: r[key])[:count]
    width = cell * (2 + max((len(r["references"]) for r in chosen), default=0))
    sheet = Image.new("RGB", (width, cell * len(chosen)), "white")
    for y, r in enumerate(chosen):
        generated = Image.open(root / r["image"]).convert("RGB")
        if r.get("pose"):
            pose_map = Image.fromarray(render_pose_map(fit_scene(load_openpose(root / r["pose"]), *r["size"])))
        else:
            pose_map = Image.new("RGB", generated.size)
        for x, im in enumerate([pose_map, generated, *(Image.open(root / p) for p in r["references"])]):
            im = im.convert("RGB")
            im.thumbnail((cell, cell))
            sheet.paste(im, (x * cell, y * cell))
    tmp = path.parent / f".{path.stem}.tmp{os.getpid()}.png"  # two shards finishing together both merge
    sheet.save(tmp)
    tmp.replace(path)
    return path
