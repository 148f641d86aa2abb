"""Generations of an embedded index: a running studio keeps answering right while
`python -m pose_db.build --out I` publishes a new generation, then follows it; readers never
write into the index; an old generation is removed only when no reader holds it."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pose_db.index.build import build_index
from pose_db.index.store import READERS_LOCK, PoseIndex
from pose_db.index.swap import collect_generations
from tests.helpers.entries import many_entries, tiny_entries
from tests.helpers.launch import free_port

REPO = Path(__file__).resolve().parents[2]
HANDSHAKE = "two friends shaking hands"


def files_of(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def clean_env(**extra: str) -> dict:
    return {k: v for k, v in os.environ.items() if not k.startswith("ASTRA_")} | extra


def test_a_reader_writes_nothing_and_follows_a_rebuild_between_queries(tmp_path, minilm_embedder):
    out = tmp_path / "index"
    build_index(out, url="", entries=tiny_entries(), embedder=minilm_embedder, progress=False).close()
    before = files_of(out)
    others = set(Path("/tmp").glob(f"astra-pose-index-{os.getpid()}-*"))  # other tests' open readers
    reader = PoseIndex.open(out)
    query = minilm_embedder.encode([HANDSHAKE])[0]
    assert reader.search(query, 1)[0].entry.id == "t-003"
    reader.count()
    assert files_of(out) == before  # Chroma only ever opened the reader's private copy
    rebuilt = build_index(out, url="", entries=tiny_entries("u"), embedder=minilm_embedder, progress=False)
    assert reader.search(query, 1)[0].entry.id == "u-003"  # the next query reads the new generation
    assert reader.manifest["generation"] == rebuilt.manifest["generation"]
    assert set(Path("/tmp").glob(f"astra-pose-index-{os.getpid()}-*")) - others  # each reader has its copy
    reader.close()
    rebuilt.close()
    assert set(Path("/tmp").glob(f"astra-pose-index-{os.getpid()}-*")) <= others  # copies go with their reader


def test_an_old_generation_stays_while_a_reader_holds_it(tmp_path, minilm_embedder):
    import fcntl

    out = tmp_path / "index"
    build_index(out, url="", entries=tiny_entries(), embedder=minilm_embedder, progress=False).close()
    old = (out / "CURRENT").read_text().strip()
    fd = os.open(out / old / READERS_LOCK, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)  # a reader copying the old generation right now
        build_index(out, url="", entries=many_entries(3), embedder=minilm_embedder, progress=False).close()
        assert (out / old).is_dir()  # kept: a reader is copying it
    finally:
        os.close(fd)
    assert collect_generations(out) == [] and not (out / old).exists()  # gone once released


@pytest.mark.slow
def test_rebuild_under_a_running_studio(tmp_path, minilm_embedder):
    """`python app.py --index I` answers /retrieve while `python -m pose_db.build --out I` runs."""
    from gradio_client import Client

    out = tmp_path / "index"
    build_index(out, url="", entries=tiny_entries(), embedder=minilm_embedder, progress=False).close()
    port = free_port()
    log = open(tmp_path / "studio.log", "wb")
    studio = subprocess.Popen([sys.executable, "app.py", "--engine", "none", "--index", str(out), "--host",
                               "127.0.0.1", "--port", str(port)], cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                              env=clean_env(GRADIO_ANALYTICS_ENABLED="False"))
    try:
        client = _connect(Client, f"http://127.0.0.1:{port}/", studio, tmp_path / "studio.log")
        first = client.predict(HANDSHAKE, 0, api_name="/retrieve")
        assert first["matched"] and first["results"][0]["id"] == "t-003"
        answers, errors, stop = [], [], threading.Event()

        def ask() -> None:
            while not stop.is_set():
                try:
                    answers.append(client.predict(HANDSHAKE, 0, api_name="/retrieve"))
                except Exception as error:  # noqa: BLE001 - every failure is a finding
                    errors.append(repr(error))

        asker = threading.Thread(target=ask)
        asker.start()
        try:
            build = subprocess.run([sys.executable, "-m", "pose_db.build", "--out", str(out), "--quiet",
                                    "--actions", "handshake,wave_hello", "--variations", "3", "--workers", "0"],
                                   cwd=REPO, capture_output=True, text=True, timeout=300, env=clean_env())
            assert build.returncode == 0, build.stderr[-2000:]
            time.sleep(1.0)
        finally:
            stop.set()
            asker.join(60)
        assert not errors, errors[:3]
        assert len(answers) >= 3
        for answer in answers:  # every answer, before, during and after the swap, is a handshake
            assert answer["matched"] and answer["results"][0]["action"] == "handshake", answer["results"][:1]
            assert {r["id"][:2] for r in answer["results"]} <= {"t-"} or not any(
                r["id"].startswith("t-") for r in answer["results"])  # never a mix of generations
        after = client.predict(HANDSHAKE, 0, api_name="/retrieve")
        assert after["results"][0]["action"] == "handshake" and not after["results"][0]["id"].startswith("t-")
        live = (out / "CURRENT").read_text().strip()
        assert sorted(p.name for p in out.iterdir()) == ["CURRENT", live]  # the old generation is gone
        before = files_of(out)
        client.predict("a man waving hello", 0, api_name="/retrieve")
        assert files_of(out) == before  # the studio wrote nothing into the index
        check = PoseIndex.open(out)  # and it still matches its manifest
        check.close()
    finally:
        studio.terminate()
        studio.wait(30)
        log.close()


def _connect(client_class, url: str, process: subprocess.Popen, log: Path):
    deadline = time.monotonic() + 240
    while True:
        if process.poll() is not None:
            raise AssertionError(f"the studio exited: {log.read_text()[-3000:]}")
        try:
            return client_class(url, verbose=False)
        except Exception:  # noqa: BLE001 - not up yet
            if time.monotonic() > deadline:
                raise AssertionError(f"the studio never came up: {log.read_text()[-3000:]}") from None
            time.sleep(1.0)
