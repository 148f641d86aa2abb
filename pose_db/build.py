"""Build the RAG-Pose index: generate the library, embed every prompt, store it in Chroma.

    python -m pose_db.build [--out DIR] [--seed S] [--actions a,b] [--variations N] [--chroma-url URL]

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
import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path

from .embed import Embedder
from .entry import LibraryEntry
from .index import (IndexMissing, PoseIndex, connect, default_name, default_path, entry_from_record,
                    resolve_url)
from .scene import PoseError

log = logging.getLogger(__name__)

MANIFEST_FILE = "pose_index.json"  # marks a finished embedded index folder
_BATCH = 256


class BuildBusy(PoseError):
    """Another build of the same index holds its lock."""


def build_index(out: str | Path | None = None, *, url: str | None = None, name: str | None = None,
                seed: int = 0, actions: list[str] | None = None, variations: int = 30,
                specs_dir: str | Path | None = None, embedder: Embedder | None = None,
                entries: Iterable[LibraryEntry] | None = None, keep_imported: bool = True,
                progress: bool = True, wait: bool = False) -> PoseIndex:
    """Build (or rebuild) the pose index and return it, opened.

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
    """
    url = resolve_url(out, url)
    with build_lock(url, name, out, wait=wait):
        return _build(out, url, name, seed=seed, actions=actions, variations=variations, specs_dir=specs_dir,
                      embedder=embedder, entries=entries, keep_imported=keep_imported, progress=progress)


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


@contextlib.contextmanager
def build_lock(url: str | None, name: str | None, out: str | Path | None, wait: bool) -> Iterator[None]:
    """Hold the machine-wide lock of one index; `BuildBusy` (or waiting) if another build has it."""
    import filelock

    if url:
        lock_path = default_path().parent / f".chroma-{name or default_name()}.lock"
    else:
        folder = index_folder(out)
        lock_path = folder.parent / f".{folder.name}.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(str(lock_path), is_singleton=False)
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        if not wait:
            raise BuildBusy(f"Another build of this pose index is running (lock {lock_path}); wait for it to "
                            f"finish, then run yours again.") from None
        log.info("Another process is building the pose index; waiting for it (lock %s).", lock_path)
        lock.acquire(timeout=-1)
    try:
        yield
    finally:
        lock.release()


def fill(index: PoseIndex, entries: Iterable[LibraryEntry], embedder: Embedder, *, total: int | None = None,
         progress: bool = True, desc: str = "Building pose index") -> int:
    """Embed and add `entries` to `index` in batches; returns how many were added."""
    from tqdm import tqdm

    added, seen = 0, set()
    with tqdm(total=total, unit="entry", desc=desc, disable=not progress, mininterval=1.0,
              file=sys.stderr, dynamic_ncols=True) as bar:
        iterator = iter(entries)
        while batch := list(islice(iterator, _BATCH)):
            repeated = seen.intersection(e.id for e in batch)
            if repeated:
                raise PoseError(f"Entry ids must be unique; repeated: {sorted(repeated)[:5]}. Give each entry its own id.")
            seen.update(e.id for e in batch)
            index.add(batch, embedder.encode([e.prompt for e in batch]))
            added += len(batch)
            bar.update(len(batch))
    return added


def recover_interrupted_swap(out: Path) -> None:
    """Put the previous index back if a crash hit between the two renames of a swap."""
    previous = _sibling(out, "previous")
    if not out.exists() and previous.is_dir():
        os.replace(previous, out)


def _build(out: str | Path | None, url: str | None, name: str | None, *, seed: int = 0,
           actions: list[str] | None = None, variations: int = 30, specs_dir: str | Path | None = None,
           embedder: Embedder | None = None, entries: Iterable[LibraryEntry] | None = None,
           keep_imported: bool = True, progress: bool = True) -> PoseIndex:
    """build_index's work, with the lock already held."""
    name = name or default_name()
    embedder = embedder or Embedder()
    if entries is None:
        entries = _library(specs_dir=specs_dir, seed=seed, variations=variations, actions=actions)
        total = _expected_entries(specs_dir, actions, variations)
    else:
        total = len(entries) if hasattr(entries, "__len__") else None
    info = {"seed": int(seed), "variations": int(variations), "actions": ",".join(actions or [])}
    if url:
        return _build_on_server(url, name, entries, total, embedder, keep_imported, progress, info)
    return _build_in_folder(index_folder(out), name, entries, total, embedder, keep_imported, progress, info)


# -- embedded folder --------------------------------------------------------------------------


def _build_in_folder(out: Path, name: str, entries: Iterable[LibraryEntry], total: int, embedder: Embedder,
                     keep_imported: bool, progress: bool, info: dict) -> PoseIndex:
    started = time.perf_counter()
    with staged_folder(out) as staging:
        index = PoseIndex.create(connect(staging), model=embedder.name, dimension=embedder.dimension,
                                 name=name, location=str(out), **info)
        added = fill(index, entries, embedder, total=total, progress=progress)
        added += _carry_imported(out, None, name, index, embedder) if keep_imported else 0
        publish_folder(index, staging)
    _log_done(added, started, str(out))
    return PoseIndex.open(out, url="", name=name)


@contextlib.contextmanager
def staged_folder(out: Path, copy_current: bool = False) -> Iterator[Path]:
    """A sibling folder to write the next version of the index `out` into (a copy of the current
    one if asked), renamed into place when the block ends cleanly and deleted when it does not.

    Hold `build_lock` around it.
    """
    recover_interrupted_swap(out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MANIFEST_FILE).exists())):
        raise PoseError(f"{out} exists and is not a pose index; choose another folder or empty it.")
    for stale in out.parent.glob(f".{out.name}.building-*"):  # left by a killed build; we hold the lock
        shutil.rmtree(stale, ignore_errors=True)
    staging = _sibling(out, f"building-{os.getpid()}")
    try:
        if copy_current:
            shutil.copytree(out, staging)
        yield staging
        _swap_in(staging, out)
    except BaseException:  # Ctrl-C included: the previous index stays where it was
        shutil.rmtree(staging, ignore_errors=True)
        raise


def publish_folder(index: PoseIndex, folder: Path) -> None:
    """Publish `index` (written into `folder`), mark the folder finished and release it."""
    index.publish()
    (folder / MANIFEST_FILE).write_text(json.dumps(index.manifest, indent=2) + "\n")
    index.close()


def _swap_in(staging: Path, out: Path) -> None:
    previous = _sibling(out, "previous")
    shutil.rmtree(previous, ignore_errors=True)
    if out.exists():
        os.replace(out, previous)
    os.replace(staging, out)
    shutil.rmtree(previous, ignore_errors=True)


def _sibling(out: Path, suffix: str) -> Path:
    return out.parent / f".{out.name}.{suffix}"


def index_folder(out: str | Path | None) -> Path:
    """The embedded index folder: `out`, else ``ASTRA_POSE_INDEX``, else the cache folder."""
    return (Path(out).expanduser() if out is not None else default_path()).absolute()


# -- Chroma server ----------------------------------------------------------------------------


def _build_on_server(url: str, name: str, entries: Iterable[LibraryEntry], total: int, embedder: Embedder,
                     keep_imported: bool, progress: bool, info: dict) -> PoseIndex:
    started = time.perf_counter()
    client = connect(url=url)
    index = PoseIndex.create(client, model=embedder.name, dimension=embedder.dimension, name=name,
                             location=f"{url} (collection {name})", **info)
    try:
        added = fill(index, entries, embedder, total=total, progress=progress)
        added += _carry_imported(None, url, name, index, embedder) if keep_imported else 0
    except BaseException:  # readers still see the previous generation; drop our partial one
        for n in index.people_counts:
            with contextlib.suppress(Exception):
                client.delete_collection(index._collection_name(n))
        raise
    index.publish()
    _log_done(added, started, index.location)
    return index


# -- shared -----------------------------------------------------------------------------------


def _carry_imported(path: Path | None, url: str | None, name: str, index: PoseIndex, embedder: Embedder) -> int:
    """Copy the previous index's imported (non-synthetic) entries into `index`."""
    try:
        previous = PoseIndex.open(path, url or "", name)
    except IndexMissing:
        return 0
    try:
        records = [r for r in previous.records(include_embeddings=True) if r["metadata"]["source"] != "synthetic"]
        same_model = previous.model == index.model and previous.dimension == index.dimension
    finally:
        if path is not None:
            previous.close()
    if not records:
        return 0
    imported = [entry_from_record(r) for r in records]
    vectors = [r["embedding"] for r in records] if same_model else embedder.encode([e.prompt for e in imported])
    index.add(imported, vectors)
    log.info("Kept %d imported entries from the previous index.", len(imported))
    return len(imported)


def _library(**options) -> Iterator[LibraryEntry]:
    from .library import generate_library

    return generate_library(**options)


def _expected_entries(specs_dir: str | Path | None, actions: list[str] | None, variations: int) -> int | None:
    try:
        from .action_spec import load_actions
        from .library import select_actions

        return len(select_actions(load_actions(specs_dir), actions)) * variations
    except Exception:  # only the progress bar's total; the build itself reports spec errors
        return None


def _log_done(added: int, started: float, where: str) -> None:
    elapsed = time.perf_counter() - started
    log.info("Pose index ready at %s: %d entries in %.1f s (%.0f entries/s).", where, added, elapsed,
             added / max(elapsed, 1e-9))


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
                            keep_imported=not args.drop_imported, progress=not args.quiet)
    except KeyboardInterrupt:
        print("Interrupted: the previous index (if any) is unchanged.", file=sys.stderr)
        return 130
    except (PoseError, ValueError) as error:  # SpecError is a ValueError with a what-to-fix message
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{index.count()} entries in {index.location}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
