"""Benchmark `pose_db.library.generate.generate_library` alone (no embedding): entries per second.

    python benchmarks/library_generation.py [--repeats 3] [--specs DIR] [--json-out FILE]

Runs the whole library `--repeats` times in one process and reports the median wall time and
the median CPU time of this process (on a shared machine the wall time also counts waiting
for a core; the CPU time is what one free core would take). The gate's rejections per rule are
those of the last run (every run is identical: generation is deterministic).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pose_db.library.gate import QualityGate  # noqa: E402
from pose_db.library.generate import generate_library  # noqa: E402


def run_once(specs: str | None) -> tuple[int, float, float, QualityGate]:
    gate = QualityGate()
    wall, cpu = time.perf_counter(), time.process_time()
    n = sum(1 for _ in generate_library(specs, gate=gate))
    return n, time.perf_counter() - wall, time.process_time() - cpu, gate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--specs", help="folder of action specs (default: the shipped library)")
    parser.add_argument("--json-out", help="also write the numbers to this JSON file")
    args = parser.parse_args(argv)
    walls, cpus = [], []
    for _ in range(args.repeats):
        n, wall, cpu, gate = run_once(args.specs)
        walls.append(wall)
        cpus.append(cpu)
    result = {
        "entries": n,
        "repeats": args.repeats,
        "wall_s_median": round(statistics.median(walls), 2),
        "cpu_s_median": round(statistics.median(cpus), 2),
        "entries_per_s_wall": round(n / statistics.median(walls), 1),
        "entries_per_s_cpu": round(n / statistics.median(cpus), 1),
        "gate": {"checked": gate.report.checked, "kept": gate.report.kept, "rejected": gate.report.rejected},
    }
    print(json.dumps(result, indent=2))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
