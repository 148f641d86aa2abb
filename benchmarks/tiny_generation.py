"""Tiny-engine generation: end-to-end time, denoising steps/s and peak memory (CPU).

    python benchmarks/tiny_generation.py [--runs 5] [--steps 8] [--size 64] [--json OUT.json]

Runs ``AstraPipeline.tiny()`` end to end (text encoders, references, pose map, DSM, binding,
the flow-matching loop, VAE decode) for three requests: text-only, one subject, and two subjects
bound to a two-person pose. Reports medians over --runs; steps/s counts denoising steps only
(timed through ``callback_on_step_end``). Peak memory is the process's peak resident set size.
The tiny engine's images are noise: this measures the code path, not FLUX.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine import AstraPipeline  # noqa: E402


def _subject(seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (96, 72, 3), dtype=np.uint8))


def _two_people(size: int) -> dict:
    def person(x: float, subject: int) -> dict:
        pts = [[x + 0.05 * size * (i % 4), 0.1 * size + 0.045 * size * i, 1] for i in range(18)]
        return {"pose_keypoints_2d": sum(pts, []), "subject": subject}
    return {"canvas_width": size, "canvas_height": size, "people": [person(0.1 * size, 0), person(0.6 * size, 1)]}


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    rss_before = _rss_mb()
    start = time.perf_counter()
    pipe = AstraPipeline.tiny(seed=0)
    build_s = time.perf_counter() - start
    requests = {
        "text_only": dict(prompt="a quiet street at dusk"),
        "one_subject": dict(prompt="Mia waving", subjects=[_subject(1)], subject_names=["Mia"]),
        "two_subjects_posed": dict(prompt="Mia and Leo shaking hands", subjects=[_subject(1), _subject(2)],
                                   subject_names=["Mia", "Leo"], pose=_two_people(args.size)),
    }
    results = {}
    for name, request in requests.items():
        totals, rates = [], []
        for run in range(args.runs + 1):  # the first run warms up
            stamps: list[float] = []

            def stamp(p, step, t, kwargs, stamps=stamps):
                stamps.append(time.perf_counter())
                return {}

            begin = time.perf_counter()
            pipe(height=args.size, width=args.size, num_inference_steps=args.steps, seed=run,
                 callback_on_step_end=stamp, **request)
            total = time.perf_counter() - begin
            if run:
                totals.append(total)
                rates.append((len(stamps) - 1) / (stamps[-1] - stamps[0]))
        results[name] = {"median_total_s": statistics.median(totals), "median_steps_per_s": statistics.median(rates)}
    result = {
        "size": args.size, "steps": args.steps, "runs": args.runs, "build_s": build_s,
        "requests": results, "peak_rss_mb": _rss_mb(), "rss_before_build_mb": rss_before,
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
