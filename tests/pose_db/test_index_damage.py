"""A damaged, missing, read-only or full index is refused with a sentence, never loaded, never created.

Damaged copies are made the way the attack made them: garbage written into an HNSW
``data_level0.bin`` (which crashed the process inside hnswlib before the manifest check), a
deleted HNSW folder, a corrupt ``chroma.sqlite3``. Read-only and full disks are real tmpfs
mounts (skipped where this process may not mount).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from pose_db.index.build import build_index
from pose_db.index.integrity import IndexDamaged
from pose_db.index.store import IndexMissing, PoseIndex
from pose_db.index.swap import DiskFull
from pose_db.scene.model import PoseError
from tests.helpers.entries import many_entries, tiny_entries

REPO = Path(__file__).resolve().parents[2]


def run_module(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASTRA_")}
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env=env)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory, minilm_embedder) -> Path:
    out = tmp_path_factory.mktemp("pristine") / "index"
    build_index(out, url="", entries=tiny_entries(), embedder=minilm_embedder, progress=False).close()
    return out


def damaged_copy(pristine: Path, tmp_path: Path, how: str) -> Path:
    out = tmp_path / "index"
    shutil.copytree(pristine, out)
    generation = out / (out / "CURRENT").read_text().strip()
    segments = sorted(p for p in generation.iterdir() if p.is_dir())
    if how == "garbage-hnsw":
        target = segments[0] / "data_level0.bin"
        data = bytearray(target.read_bytes())
        data[: 4096] = os.urandom(4096)  # same size, garbage links and vectors
        target.write_bytes(bytes(data))
    elif how == "deleted-hnsw":
        shutil.rmtree(segments[-1])
    elif how == "corrupt-sqlite":
        target = generation / "chroma.sqlite3"
        data = bytearray(target.read_bytes())
        data[100:8192] = b"\xff" * (8192 - 100)
        target.write_bytes(bytes(data))
    elif how == "truncated-sqlite":
        target = generation / "chroma.sqlite3"
        target.write_bytes(target.read_bytes()[:5000])
    elif how == "no-manifest":
        (generation / "pose_index.json").unlink()
    elif how == "garbage-manifest":
        (generation / "pose_index.json").write_text("{not json")
    elif how == "garbage-pointer":
        (out / "CURRENT").write_bytes(b"\x00\xff../../etc")
    elif how == "pointer-to-nowhere":
        (out / "CURRENT").write_text("g" + "0" * 26 + "\n")
    return out


DAMAGE = ["garbage-hnsw", "deleted-hnsw", "corrupt-sqlite", "truncated-sqlite", "no-manifest",
          "garbage-manifest", "garbage-pointer", "pointer-to-nowhere"]


@pytest.mark.parametrize("how", DAMAGE)
def test_a_damaged_index_is_refused_before_chroma_loads_it(pristine, tmp_path, how):
    out = damaged_copy(pristine, tmp_path, how)
    before = sorted(p.name for p in out.rglob("*"))
    copies = set(Path("/tmp").glob(f"astra-pose-index-{os.getpid()}-*"))  # other tests' open readers
    with pytest.raises(PoseError, match="(?i)rebuild it with `python -m pose_db.build --out") as refused:
        PoseIndex.open(out)
    assert isinstance(refused.value, (IndexDamaged, IndexMissing))
    assert sorted(p.name for p in out.rglob("*")) == before  # nothing repaired or written behind our back
    assert set(Path("/tmp").glob(f"astra-pose-index-{os.getpid()}-*")) == copies  # the private copy is gone


@pytest.mark.parametrize("how", ["garbage-hnsw", "deleted-hnsw", "corrupt-sqlite"])
def test_the_query_cli_refuses_a_damaged_index_with_a_sentence(pristine, tmp_path, how):
    out = damaged_copy(pristine, tmp_path, how)
    answer = run_module("pose_db.query", "--index", str(out), HANDSHAKE)
    assert answer.returncode == 2, (answer.returncode, answer.stderr[-1500:])  # not a segfault (-11), not 0
    assert answer.stderr.startswith("error: The pose index") and "Traceback" not in answer.stderr
    assert f"python -m pose_db.build --out {out}" in answer.stderr and answer.stdout == ""


HANDSHAKE = "two friends shaking hands"


def test_a_rebuild_repairs_a_damaged_index(pristine, tmp_path, minilm_embedder):
    out = damaged_copy(pristine, tmp_path, "garbage-hnsw")
    rebuilt = build_index(out, url="", entries=many_entries(4), embedder=minilm_embedder, progress=False)
    assert rebuilt.count() == 4
    rebuilt.close()
    assert PoseIndex.open(out).count() == 4
    assert sorted(p.name for p in out.iterdir()) == ["CURRENT", (out / "CURRENT").read_text().strip()]


def test_a_query_never_creates_or_builds_an_index(tmp_path):
    missing = tmp_path / "nonexistent" / "idx"
    answer = run_module("pose_db.query", "--index", str(missing), HANDSHAKE)
    assert answer.returncode == 2 and "No pose index at" in answer.stderr and "pose_db.build" in answer.stderr
    assert not (tmp_path / "nonexistent").exists()


def test_an_index_of_an_older_version_asks_for_a_rebuild(tmp_path):
    legacy = tmp_path / "index"
    legacy.mkdir()
    (legacy / "pose_index.json").write_text('{"format": 1, "generation": "g1"}')
    (legacy / "chroma.sqlite3").write_bytes(b"")
    answer = run_module("pose_db.query", "--index", str(legacy), HANDSHAKE)
    assert answer.returncode == 2 and "older version" in answer.stderr and "--out" in answer.stderr


def test_build_into_proc_says_the_folder_cannot_be_written(tmp_path):
    built = run_module("pose_db.build", "--out", "/proc/astra-index", "--variations", "1", "--actions", "handshake")
    assert built.returncode == 2 and "not writable" in built.stderr and "another build" not in built.stderr
    assert "Traceback" not in built.stderr


@contextlib.contextmanager
def tmpfs(path: Path, options: str):
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode()[:200]}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def test_build_into_a_read_only_folder_says_so(tmp_path):
    with tmpfs(tmp_path / f"ro-{uuid.uuid4().hex[:6]}", "ro,size=1m") as folder:
        built = run_module("pose_db.build", "--out", str(folder / "index"), "--variations", "1",
                           "--actions", "handshake")
        assert built.returncode == 2 and "not writable" in built.stderr and "Read-only" in built.stderr
        assert "Traceback" not in built.stderr and "another build" not in built.stderr


def test_a_full_disk_says_how_much_the_build_needs_and_keeps_the_old_index(tmp_path, minilm_embedder):
    with tmpfs(tmp_path / f"full-{uuid.uuid4().hex[:6]}", "size=1600k") as folder:
        out = folder / "index"
        build_index(out, url="", entries=tiny_entries(), embedder=minilm_embedder, progress=False).close()
        live = (out / "CURRENT").read_text().strip()
        with pytest.raises(DiskFull, match=r"is full .*the build needs about [\d.]+ MB.*previous index is unchanged"):
            build_index(out, url="", entries=many_entries(900), embedder=minilm_embedder, progress=False)
        assert (out / "CURRENT").read_text().strip() == live and not list(out.glob(".building-*"))
        index = PoseIndex.open(out)
        assert index.count() == len(tiny_entries())
        index.close()


def test_a_disk_that_fills_up_mid_build_says_so_and_keeps_the_old_index(tmp_path, minilm_embedder):
    with tmpfs(tmp_path / f"fill-{uuid.uuid4().hex[:6]}", "size=2m") as folder:
        out = folder / "index"
        build_index(out, url="", entries=tiny_entries(), embedder=minilm_embedder, progress=False).close()
        live = (out / "CURRENT").read_text().strip()
        free = shutil.disk_usage(folder).free
        (folder / "ballast").write_bytes(b"\0" * max(free - 200_000, 0))  # the check before the build passes
        with pytest.raises(DiskFull, match=r"is full .*Free some space"):
            build_index(out, url="", entries=many_entries(20), embedder=minilm_embedder, progress=False)
        assert (out / "CURRENT").read_text().strip() == live and not list(out.glob(".building-*"))
        (folder / "ballast").unlink()
        index = PoseIndex.open(out)
        assert index.count() == len(tiny_entries())
        index.close()
