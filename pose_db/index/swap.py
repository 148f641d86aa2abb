"""Writing an embedded index safely: one build at a time, each build a new generation, published atomically.

Layout of an index folder ``I``::

    I/CURRENT              the live generation's folder name (replaced atomically: write, fsync, rename)
    I/g<stamp><hex>/       one finished generation: Chroma's files, ``pose_index.json`` (sizes and
                           hashes of every file, entry counts; written last), ``.readers.lock``
    I/.building-<gen>/     a build or import in progress (removed by the next one if it was killed)

A build writes ``.building-…``, closes Chroma, writes the manifest, renames the folder to its
generation name and only then replaces ``CURRENT``. A crash at any point leaves ``CURRENT``
naming a complete generation. Readers (`store.PoseIndex.open`) copy the generation ``CURRENT``
names, holding a shared lock on its ``.readers.lock`` while they copy; old generations are
removed only when no reader holds that lock (a busy one is left for the next build). A file
lock beside the folder keeps two builds on one machine from racing.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

from pose_db.scene.model import PoseError

from .integrity import MANIFEST_FILE, copy_size, file_manifest, remove_tree, verified_copy
from .store import (
    CURRENT_FILE,
    READERS_LOCK,
    PoseIndex,
    default_name,
    default_path,
    new_generation_name,
    read_current,
    rebuild_hint,
)

log = logging.getLogger("pose_db.index.build")

_STAGING = ".building-"
_GENERATION = re.compile(r"^g\d{20}[0-9a-f]{6}$")
_LEGACY = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")  # Chroma segment folders
_LEGACY_FILES = ("chroma.sqlite3", MANIFEST_FILE, "build_report.json")


class BuildBusy(PoseError):
    """Another build of the same index holds its lock."""


class DiskFull(PoseError):
    """The disk holding the index has no room for a new generation."""


@contextlib.contextmanager
def build_lock(url: str | None, name: str | None, out: str | Path | None, wait: bool) -> Iterator[None]:
    """Hold the machine-wide lock of one index; `BuildBusy` (or waiting) if another build has it."""
    import filelock

    if url:
        lock_path = default_path().parent / f".chroma-{name or default_name()}.lock"
    else:
        folder = index_folder(out)
        check_writable(folder)
        lock_path = folder.parent / f".{folder.name}.lock"
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise PoseError(f"Cannot create {lock_path.parent} ({error.strerror or error}); choose a folder you can "
                        f"write.") from error
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


def check_writable(out: Path) -> None:
    """PoseError with a sentence unless a build can write the index folder `out` (and its lock beside it)."""
    probe_in = out if out.is_dir() else out.parent
    existing = probe_in
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise PoseError(f"Cannot build the pose index at {out}: {existing} is not a folder. Choose another --out.")
    probe = existing / f".astra-write-test-{os.getpid()}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        reason = error.strerror or str(error)
        raise PoseError(f"Cannot build the pose index at {out}: {existing} is not writable ({reason}). Choose a "
                        f"folder you can write with --out, or fix its permissions.") from None


def recover_interrupted_swap(out: Path) -> None:
    """Put an older version's previous index back if a crash hit between the two renames of its swap."""
    previous = out.parent / f".{out.name}.previous"
    if not out.exists() and previous.is_dir():
        os.replace(previous, out)


@contextlib.contextmanager
def staged_folder(out: Path, copy_current: bool = False, need_bytes: int = 0) -> Iterator[Path]:
    """A folder inside the index `out` to write its next generation into (a verified copy of the
    current one if asked). When the block ends cleanly (after `publish_folder`), it becomes a
    generation and ``CURRENT`` names it; when it does not, it is deleted.

    Hold `build_lock` around it.
    """
    recover_interrupted_swap(out)
    check_folder(out)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob(f"{_STAGING}*"):  # left by a killed build; we hold the lock
        remove_tree(stale)
    current = _current_folder(out)
    if current is not None:
        need_bytes = max(need_bytes, copy_size(_files_of(current)))
    check_space(out, need_bytes)
    staging = out / f"{_STAGING}{os.getpid()}"
    try:
        staging.mkdir()
        if copy_current:
            if current is None:
                raise PoseError(f"No pose index at {out} to add to: build it first with "
                                f"`python -m pose_db.build --out {out}`.")
            verified_copy(current, _files_of(current), staging, rebuild_hint(out))
        yield staging
        _publish_generation(out, staging)
    except BaseException as error:  # Ctrl-C included: the live generation stays live
        remove_tree(staging)
        if created:
            with contextlib.suppress(OSError):
                out.rmdir()  # only when empty: a failed first build leaves no folder behind
        if not isinstance(error, (KeyboardInterrupt, PoseError)) and is_disk_full(error, out):
            raise DiskFull(disk_full_message(out, need_bytes)) from error
        raise
    collect_generations(out)


def check_folder(out: Path) -> None:
    """PoseError unless `out` is absent, empty or a pose index: a build never overwrites a folder of
    something else."""
    if not out.exists():
        return
    if not out.is_dir():
        raise PoseError(f"{out} exists and is not a pose index; choose another folder or empty it.")
    if any(out.iterdir()) and not ((out / CURRENT_FILE).exists() or (out / MANIFEST_FILE).exists()):
        raise PoseError(f"{out} exists and is not a pose index; choose another folder or empty it.")


def publish_folder(index: PoseIndex, folder: Path) -> None:
    """Publish `index` (written into `folder`), close Chroma, and write the generation's manifest:
    every file's size and hash and the entry counts (read back by `store.open_generation`)."""
    index.publish()
    counts = index.counts()
    index.close()
    generation = new_generation_name(index.manifest["generation"][1:21])
    manifest = index.manifest | {"folder": generation, "counts": counts, "files": file_manifest(folder)}
    (folder / READERS_LOCK).write_bytes(b"")
    _write_atomic(folder / MANIFEST_FILE, json.dumps(manifest, indent=2) + "\n")


def collect_generations(out: Path) -> list[str]:
    """Remove the generations ``CURRENT`` does not name and no reader holds; returns those kept."""
    try:
        _, live = read_current(out)
    except PoseError:
        return []
    kept = []
    for child in out.iterdir():
        if child.name == live or not child.is_dir() or not _GENERATION.match(child.name):
            continue
        if _remove_if_unread(child):
            log.info("Removed the old pose index generation %s.", child.name)
        else:
            kept.append(child.name)
            log.info("Kept the old generation %s: a reader is copying it; the next build removes it.", child.name)
    _remove_legacy(out)
    return kept


def check_space(out: Path, need_bytes: int) -> None:
    """DiskFull before a build starts when the disk clearly lacks the room a generation needs."""
    if need_bytes <= 0:
        return
    free = _free_bytes(out)
    if free is not None and free < need_bytes:
        raise DiskFull(disk_full_message(out, need_bytes, free))


def is_disk_full(error: BaseException, out: Path | None = None) -> bool:
    """Whether `error` (or what caused it) is the disk running out of room. Chroma's native code
    reports it only as "Error in compaction" or the like, so a failure while the disk holding
    `out` has under 1 MB free counts too."""
    seen = 0
    while error is not None and seen < 10:
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        text = str(error).lower()
        if "no space left" in text or "disk is full" in text or "disk full" in text:
            return True
        error = error.__cause__ or error.__context__
        seen += 1
    free = _free_bytes(out)
    return free is not None and free < 1_000_000


def disk_full_message(out: Path, need_bytes: int, free: int | None = None) -> str:
    free = _free_bytes(out) if free is None else free
    need = f"about {_mb(need_bytes)}" if need_bytes else "more room"
    have = f" ({_mb(free)} free)" if free is not None else ""
    return (f"The disk holding {out} is full{have}: the build needs {need}. Free some space (or build "
            f"elsewhere with --out) and run it again; the previous index is unchanged.")


def index_folder(out: str | Path | None) -> Path:
    """The embedded index folder: `out`, else ``ASTRA_POSE_INDEX``, else the cache folder."""
    return (Path(out).expanduser() if out is not None else default_path()).absolute()


# -- helpers ------------------------------------------------------------------------------------

def _publish_generation(out: Path, staging: Path) -> None:
    manifest = json.loads((staging / MANIFEST_FILE).read_text())
    generation = out / manifest["folder"]
    os.replace(staging, generation)
    _fsync_dir(out)
    _write_atomic(out / CURRENT_FILE, manifest["folder"] + "\n")


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "w", encoding="utf-8") as writer:
            writer.write(text)
            writer.flush()
            os.fsync(writer.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _current_folder(out: Path) -> Path | None:
    try:
        _, generation = read_current(out)
    except PoseError:
        return None
    folder = out / generation
    return folder if folder.is_dir() else None


def _files_of(folder: Path) -> dict:
    try:
        return json.loads((folder / MANIFEST_FILE).read_text()).get("files") or {}
    except (OSError, ValueError):
        return {}


def _remove_if_unread(folder: Path) -> bool:
    try:
        import fcntl
    except ImportError:
        return False
    try:
        fd = os.open(folder / READERS_LOCK, os.O_RDONLY)
    except OSError:
        remove_tree(folder)  # no lock file: a generation we never finished publishing
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return False
    try:
        remove_tree(folder)
    finally:
        os.close(fd)
    return True


def _remove_legacy(out: Path) -> None:
    """The files of an older version's single-folder index, once a generation replaced them."""
    for name in _LEGACY_FILES:
        (out / name).unlink(missing_ok=True)
    for child in out.iterdir():
        if child.is_dir() and _LEGACY.match(child.name):
            remove_tree(child)


def _free_bytes(out: Path | None) -> int | None:
    if out is None:
        return None
    folder = out
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"
