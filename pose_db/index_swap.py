"""Writing an embedded index safely: one build at a time, and a new version swapped in only when complete.

A build (or an import) writes a sibling folder ``.NAME.building-PID``; when it is finished the
current folder moves to ``.NAME.previous``, the new one takes its name and the previous one is
deleted. A crash at any point leaves either the old or the new index under the name (a crash
between the two renames is repaired by `recover_interrupted_swap` on the next start). A file
lock beside the folder keeps two builds on one machine from racing.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from .index import MANIFEST_FILE, PoseIndex, default_name, default_path
from .scene import PoseError

log = logging.getLogger("pose_db.build")


class BuildBusy(PoseError):
    """Another build of the same index holds its lock."""


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


def recover_interrupted_swap(out: Path) -> None:
    """Put the previous index back if a crash hit between the two renames of a swap."""
    previous = _sibling(out, "previous")
    if not out.exists() and previous.is_dir():
        os.replace(previous, out)


@contextlib.contextmanager
def staged_folder(out: Path, copy_current: bool = False) -> Iterator[Path]:
    """A sibling folder to write the next version of the index `out` into (a copy of the current
    one if asked), renamed into place when the block ends cleanly and deleted when it does not.

    Hold `build_lock` around it.
    """
    recover_interrupted_swap(out)
    check_folder(out)
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


def check_folder(out: Path) -> None:
    """PoseError unless `out` is absent, empty or a finished pose index: a build never overwrites
    a folder of something else."""
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MANIFEST_FILE).exists())):
        raise PoseError(f"{out} exists and is not a pose index; choose another folder or empty it.")


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
