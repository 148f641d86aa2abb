"""Every file of a finished index generation, listed with its size and hash, and checked on open.

A build writes ``files`` (relative path -> ``[bytes, sha256]``) and the per-partition entry
counts into the generation's ``pose_index.json``. A reader never opens the published files
with Chroma (Chroma rewrites ``chroma.sqlite3`` and HNSW files even when it only reads, and
a garbage HNSW file can crash the process inside its native code): it copies the listed
files into a private folder, hashing them on the way, and opens the copy only when every
file matches. A damaged, truncated or missing file is refused with `IndexDamaged`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from pathlib import Path

from pose_db.scene.model import PoseError

MANIFEST_FILE = "pose_index.json"  # the generation's manifest, written last
_CHUNK = 1 << 20
# Written by us beside Chroma's files, not part of the index's content.
_NOT_LISTED = {MANIFEST_FILE, "build_report.json", ".readers.lock"}


class IndexDamaged(PoseError):
    """A pose index whose files do not match its manifest; the message says how to rebuild."""


def file_manifest(folder: Path) -> dict[str, list]:
    """``{relative path: [size, sha256]}`` of every regular file Chroma wrote in `folder`."""
    files = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).as_posix()
        if path.is_file() and relative not in _NOT_LISTED:
            files[relative] = [path.stat().st_size, _sha256(path)]
    return files


def verified_copy(source: Path, files: dict, target: Path, rebuild: str) -> None:
    """Copy the listed `files` of `source` into `target`, hashing each on the way.

    Raises `IndexDamaged` (naming the first bad file and saying `rebuild`) when a file is
    missing, is not a regular file, or differs in size or hash from the manifest.
    """
    if not isinstance(files, dict) or not files or not any(k.endswith("chroma.sqlite3") for k in files):
        raise IndexDamaged(f"The pose index at {source} has no list of its files (built by an older version "
                           f"or damaged): {rebuild}.")
    for relative, expected in sorted(files.items()):
        path = source / relative
        where = f"{relative} of the pose index at {source}"
        if not _safe_relative(relative) or not isinstance(expected, list) or len(expected) != 2:
            raise IndexDamaged(f"The manifest of the pose index at {source} is damaged: {rebuild}.")
        try:
            info = path.lstat()
        except OSError:
            raise IndexDamaged(f"The pose index is damaged: {where} is missing. {rebuild[0].upper()}{rebuild[1:]}.") from None
        if not stat.S_ISREG(info.st_mode) or info.st_size != expected[0]:
            raise IndexDamaged(f"The pose index is damaged: {where} has {info.st_size} bytes, its manifest "
                               f"says {expected[0]}. {rebuild[0].upper()}{rebuild[1:]}.")
        out = target / relative
        out.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        with open(path, "rb") as reader, open(out, "wb") as writer:
            for block in iter(lambda: reader.read(_CHUNK), b""):
                digest.update(block)
                writer.write(block)
        if digest.hexdigest() != expected[1]:
            raise IndexDamaged(f"The pose index is damaged: {where} does not match its manifest (its content "
                               f"changed after the build). {rebuild[0].upper()}{rebuild[1:]}.")


def copy_size(files: dict) -> int:
    """Bytes of a generation's files (what a copy or a new build of it needs on disk)."""
    return sum(int(v[0]) for v in files.values()) if isinstance(files, dict) else 0


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def _safe_relative(relative: str) -> bool:
    parts = Path(relative).parts
    return bool(parts) and not Path(relative).is_absolute() and ".." not in parts


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as reader:
        for block in iter(lambda: reader.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
