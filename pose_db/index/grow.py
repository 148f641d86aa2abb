"""Grow an existing pose index with imported entries (the CLI ``python -m pose_db.importers``).

    python -m pose_db.importers coco KEYPOINTS.json CAPTIONS.json [--index DIR | --chroma-url URL]
    python -m pose_db.importers openpose FOLDER [--index DIR | --chroma-url URL]
    python -m pose_db.importers images FOLDER [--detector blazepose|openpose|dwpose] [--weights DIR] [...]

The readers are `pose_db.library.importers`; this module embeds what they read into the index.
An embedded index is updated in a copy that is swapped in when complete, like a build.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path

from pose_db.library.detector import DEFAULT_KIND, KINDS, PoseDetector
from pose_db.library.importers import (
    import_coco,
    import_image_folder,
    import_openpose_folder,
)
from pose_db.scene.entry import LibraryEntry
from pose_db.scene.model import PoseError

from .build import fill
from .embedder import Embedder
from .store import PoseIndex, resolve_url
from .swap import build_lock, index_folder, publish_folder, staged_folder


def import_entries(entries: Iterable[LibraryEntry], path: str | Path | None = None, *, url: str | None = None,
                   name: str | None = None, embedder: Embedder | None = None, progress: bool = True) -> int:
    """Embed `entries` into the existing index (folder `path` or server `url`); returns how many.

    An embedded index is copied, updated and swapped in, so an interrupted import changes nothing.
    """
    entries = list(entries)
    embedder = embedder or Embedder()
    url = resolve_url(path, url)
    with build_lock(url, name, path, wait=False):
        if url:
            index = PoseIndex.open(url=url, name=name)
            added = fill(index, entries, embedder, total=len(entries), progress=progress, desc="Importing")
            index.publish()
            return added
        out = index_folder(path)
        PoseIndex.open(out, url="", name=name).close()  # IndexMissing: build the library first
        with staged_folder(out, copy_current=True, need_bytes=len(entries) * 8_000) as staging:
            index = PoseIndex.open_for_writing(staging, name=name, location=str(out))
            added = fill(index, entries, embedder, total=len(entries), progress=progress, desc="Importing")
            publish_folder(index, staging)
    return added




def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pose_db.importers", description="Import real poses into the index.")
    parser.add_argument("--index", default=None, help="index folder (default: $ASTRA_POSE_INDEX or the cache folder)")
    parser.add_argument("--chroma-url", default=None, help="a Chroma server instead (default: $ASTRA_CHROMA_URL)")
    parser.add_argument("--category", default=None, help="category recorded for the entries")
    parser.add_argument("--dry-run", action="store_true", help="read and report, import nothing")
    kinds = parser.add_subparsers(dest="kind", required=True)
    coco = kinds.add_parser("coco", help="COCO person keypoints + captions")
    coco.add_argument("keypoints", type=Path, help="person_keypoints_*.json")
    coco.add_argument("captions", type=Path, help="captions_*.json of the same split")
    coco.add_argument("--min-keypoints", type=int, default=8)
    coco.add_argument("--max-people", type=int, default=4)
    openpose = kinds.add_parser("openpose", help="a folder of OpenPose JSON files with captions")
    openpose.add_argument("folder", type=Path)
    images = kinds.add_parser("images", help="a folder of images with .txt captions, through a pose detector")
    images.add_argument("folder", type=Path)
    images.add_argument("--detector", choices=KINDS, default=DEFAULT_KIND,
                        help="blazepose (built in, no download), or openpose/dwpose (controlnet_aux weights)")
    images.add_argument("--weights", type=Path, default=None,
                        help="detector weights folder (default: assets/blazepose, or $ASTRA_ANNOTATORS)")
    args = parser.parse_args(argv)
    extra = {"category": args.category} if args.category else {}
    try:
        if args.kind == "coco":
            report = import_coco(args.keypoints, args.captions, min_keypoints=args.min_keypoints,
                                 max_people=args.max_people, **extra)
        elif args.kind == "openpose":
            report = import_openpose_folder(args.folder, **extra)
        else:
            report = import_image_folder(args.folder, PoseDetector.load(args.weights, kind=args.detector).require(), **extra)
        print(report.summary(), file=sys.stderr)
        if not args.dry_run and report.entries:
            added = import_entries(report.entries, args.index, url=args.chroma_url)
            print(f"imported {added} entries", file=sys.stderr)
    except PoseError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0

