"""Reading user-named files safely: regular files only, never more than a limit.

A FIFO, a device such as ``/dev/zero`` or a folder is refused without blocking (the open is
non-blocking and the file type is checked on the open descriptor), and a read stops at the
limit instead of filling memory. Every failure is a `PoseError` sentence naming the file.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from .model import PoseError


def read_regular_file(path: str | os.PathLike, *, limit: int, what: str, expected: str) -> bytes:
    """The bytes of `path`, at most `limit` of them.

    Args:
        path: the file a user named.
        limit: the largest size accepted, in bytes.
        what: how the error sentences name the file ("pose file", "batch file").
        expected: what to give instead, for the sentences ("an OpenPose .json file").
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # a FIFO must not block the open
    except OSError as exc:
        raise PoseError(f"Cannot open the {what} {path}: {exc.strerror or exc}. Give {expected}.") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise PoseError(f"The {what} {path} is not a regular file (a folder, device or pipe); give {expected}.")
        if info.st_size > limit:
            raise PoseError(f"The {what} {path} has {info.st_size} bytes, more than {limit}; give a smaller one.")
        chunks, total = [], 0
        while total <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    except OSError as exc:
        raise PoseError(f"Cannot read the {what} {path}: {exc.strerror or exc}. Give {expected}.") from None
    finally:
        os.close(fd)
    if total > limit:  # it grew while we read it
        raise PoseError(f"The {what} {path} is larger than {limit} bytes; give a smaller one.")
    return b"".join(chunks)
