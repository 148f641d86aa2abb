"""Tiny engine through the resident service: end-to-end time, denoising steps/s, peak memory (CPU).

    python benchmarks/engine_tiny.py [--runs 5] [--steps 8] [--size 64] [--json OUT.json]

Builds ``EngineService.tiny()`` once (as the studio does) and sends it three requests: text
only, one subject, and two subjects bound to a two-person pose. Steps/s counts denoising steps
only, from the service's own ``progress(step, total)`` reports; end-to-end time includes text
encoding, references, DSM and the VAE. Medians over --runs after one warm-up run per request.
CPU time (all threads) is reported too: it moves less than wall time when other processes
share the cores. Peak memory is the process's resident high-water mark (Linux VmHWM, reset before each request
so each gets its own peak). The tiny engine's images are noise: this measures the code path and
the service's overhead (``service_over_pipeline``: median end-to-end time through the service
over the same requests on the bare pipeline, interleaved in the same run), not FLUX.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from engine.request import GenerationRequest  # noqa: E402
from engine.service import EngineService  # noqa: E402


def _subject(seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (96, 72, 3), dtype=np.uint8))


def _two_people(size: int) -> dict:
    def person(x: float, subject: int) -> dict:
        pts = [[x + 0.05 * size * (i % 4), 0.1 * size + 0.045 * size * i, 1] for i in range(18)]
        return {"pose_keypoints_2d": sum(pts, []), "subject": subject}
    return {"canvas_width": size, "canvas_height": size, "people": [person(0.1 * size, 0), person(0.6 * size, 1)]}


def _reset_peak() -> bool:
    """Reset the resident high-water mark (Linux); False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _peak_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _requests(size: int, steps: int) -> dict[str, GenerationRequest]:
    common = dict(height=size, width=size, num_inference_steps=steps)
    return {
        "text_only": GenerationRequest(prompt="a quiet street at dusk", **common),
        "one_subject": GenerationRequest(prompt="Mia waving", subjects=[_subject(1)], subject_names=["Mia"],
                                         **common),
        "two_subjects_posed": GenerationRequest(
            prompt="Mia and Leo shaking hands", subjects=[_subject(1), _subject(2)], subject_names=["Mia", "Leo"],
            pose=_two_people(size), **common),
    }


def _pipeline_args(request: GenerationRequest) -> dict:
    return dict(prompt=request.prompt, subjects=list(request.subjects), subject_names=request.subject_names or None,
                pose=request.pose, height=request.height, width=request.width,
                num_inference_steps=request.num_inference_steps, guidance_scale=request.guidance_scale,
                seed=request.seed, binding_strength=request.binding_strength)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if args.steps < 2:
        parser.error("--steps must be at least 2 (steps/s needs two step reports)")
    if args.threads:
        torch.set_num_threads(args.threads)

    rss_before = _peak_mb()
    start = time.perf_counter()
    service = EngineService.tiny(seed=0)
    build_s = time.perf_counter() - start
    per_request_peaks = _reset_peak()

    results = {}
    for name, request in _requests(args.size, args.steps).items():
        totals, direct_totals, cpu_times, rates, peaks = [], [], [], [], []
        for run in range(args.runs + 1):  # run 0 warms up
            stamps: list[float] = []
            request.seed = run
            _reset_peak()
            begin, cpu_begin = time.perf_counter(), time.process_time()
            service.generate(request, progress=lambda step, total: stamps.append(time.perf_counter()))  # noqa: B023
            total, cpu = time.perf_counter() - begin, time.process_time() - cpu_begin
            peak = _peak_mb()
            # The same request on the bare pipeline, interleaved: the service's own overhead.
            begin = time.perf_counter()
            service.pipe(**_pipeline_args(request))
            direct = time.perf_counter() - begin
            if run:
                totals.append(total)
                direct_totals.append(direct)
                cpu_times.append(cpu)
                # stamps[0] is the job start; stamps[1..] follow each denoising step.
                rates.append((len(stamps) - 2) / (stamps[-1] - stamps[1]))
                peaks.append(peak)
        results[name] = {"median_total_s": statistics.median(totals), "median_cpu_s": statistics.median(cpu_times),
                         "median_steps_per_s": statistics.median(rates),
                         "median_peak_rss_mb": statistics.median(peaks),
                         "service_over_pipeline": statistics.median(totals) / statistics.median(direct_totals)}
    result = {
        "engine": service.info().kind, "size": args.size, "steps": args.steps, "runs": args.runs,
        "threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine(),
        "build_s": build_s, "rss_before_build_mb": rss_before, "per_request_peaks": per_request_peaks,
        "requests": results,
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
