"""The pose index on a real Chroma server (`chroma run` on 127.0.0.1, started and stopped here).

This is how several app replicas share one library: `ASTRA_CHROMA_URL` points them at a server.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from pose_db.index.build import build_index, embedded_text, ensure_index
from pose_db.index.grow import import_entries
from pose_db.index.stats import index_stats
from pose_db.index.store import IndexMissing, PoseIndex, connect
from pose_db.scene.model import PoseError
from tests.helpers.entries import interrupted_entries, many_entries, tiny_entries

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chroma_executable() -> str:
    local = Path(sys.executable).parent / "chroma"
    found = str(local) if local.exists() else shutil.which("chroma")
    if not found:
        pytest.fail("the `chroma` command (shipped by the chromadb package) is not installed")
    return found


@pytest.fixture(scope="module")
def chroma_url(tmp_path_factory):
    """A Chroma server on a free local port for this module; stopped (and waited for) after."""
    port = free_port()
    data = tmp_path_factory.mktemp("chroma-server")
    log = open(data.parent / "chroma-server.log", "wb")  # noqa: SIM115
    server = subprocess.Popen([chroma_executable(), "run", "--path", str(data / "db"), "--host", "127.0.0.1",
                               "--port", str(port)], stdout=log, stderr=subprocess.STDOUT,
                              env=os.environ | {"ANONYMIZED_TELEMETRY": "False"})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            assert server.poll() is None, f"chroma run exited: {(data.parent / 'chroma-server.log').read_text()[-2000:]}"
            assert time.monotonic() < deadline, "the Chroma server did not answer within 60 s"
            time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)
        log.close()


def test_build_search_and_reopen_on_the_server(chroma_url, minilm_embedder):
    entries = tiny_entries()
    built = build_index(url=chroma_url, name="srv", entries=entries, embedder=minilm_embedder, progress=False)
    assert built.path is None and built.url == chroma_url and built.count() == len(entries)
    # A second client, as another app replica would open it.
    index = PoseIndex.open(url=chroma_url, name="srv")
    assert index.manifest["generation"] == built.manifest["generation"]
    for entry in entries:
        hit = index.search(minilm_embedder.encode([embedded_text(entry.prompt)])[0], 1, people=entry.people)[0]
        assert hit.entry.id == entry.id and hit.score > 0.999 and len(hit.entry.scene.people) == entry.people
    for n in index.people_counts:
        assert index._partition(n).configuration["hnsw"]["space"] == "cosine"


def test_rebuild_moves_the_pointer_and_drops_the_old_generation(chroma_url, minilm_embedder):
    first = build_index(url=chroma_url, name="gen", entries=tiny_entries(), embedder=minilm_embedder, progress=False)
    old = {first._collection_name(n) for n in first.people_counts}
    reader = PoseIndex.open(url=chroma_url, name="gen")  # opened before the rebuild
    second = build_index(url=chroma_url, name="gen", entries=many_entries(7), embedder=minilm_embedder,
                         progress=False)
    assert second.manifest["generation"] > first.manifest["generation"]
    names = {c.name for c in connect(url=chroma_url).list_collections()}
    assert not old & names and {second._collection_name(n) for n in second.people_counts} <= names
    assert PoseIndex.open(url=chroma_url, name="gen").count() == 7
    assert reader.manifest["generation"] == first.manifest["generation"]


def test_interrupted_server_build_leaves_the_live_generation(chroma_url, minilm_embedder):
    live = build_index(url=chroma_url, name="intr", entries=tiny_entries(), embedder=minilm_embedder, progress=False)
    before = {c.name for c in connect(url=chroma_url).list_collections()}

    with pytest.raises(KeyboardInterrupt):
        build_index(url=chroma_url, name="intr", entries=interrupted_entries(), embedder=minilm_embedder, progress=False)
    index = PoseIndex.open(url=chroma_url, name="intr")
    assert index.manifest["generation"] == live.manifest["generation"] and index.count() == len(tiny_entries())
    assert {c.name for c in connect(url=chroma_url).list_collections()} == before  # partial generation dropped


def test_import_and_stats_cli_through_the_environment(chroma_url, minilm_embedder):
    build_index(url=chroma_url, name="cli", entries=tiny_entries(), embedder=minilm_embedder, progress=False)
    assert import_entries(tiny_entries("coco", "coco")[:2], url=chroma_url, name="cli", embedder=minilm_embedder,
                          progress=False) == 2
    assert index_stats(PoseIndex.open(url=chroma_url, name="cli").records())["sources"] == {"coco": 2, "synthetic": 6}
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASTRA_")}
    env |= {"ASTRA_CHROMA_URL": chroma_url, "ASTRA_CHROMA_COLLECTION": "cli"}
    stats = subprocess.run([sys.executable, "-m", "pose_db.stats", "--json"], cwd=REPO, env=env,
                           capture_output=True, text=True, timeout=120)
    assert stats.returncode == 0, stats.stderr
    counts = json.loads(stats.stdout)
    assert counts["entries"] == 8 and counts["sources"] == {"coco": 2, "synthetic": 6}
    assert counts["actions_by_people"] == {"1": 3, "2": 2, "3": 1} and counts["max_people"] == 3


def test_ensure_index_builds_once_on_the_server(chroma_url, minilm_embedder, tmp_path, monkeypatch):
    monkeypatch.setenv("ASTRA_POSE_INDEX", str(tmp_path / "unused"))  # the lock lives beside it
    with pytest.raises(IndexMissing):
        PoseIndex.open(url=chroma_url, name="first")
    index = ensure_index(url=chroma_url, name="first", embedder=minilm_embedder, entries=tiny_entries(),
                         progress=False)
    again = ensure_index(url=chroma_url, name="first", embedder=minilm_embedder, entries=many_entries(3),
                         progress=False)
    assert again.manifest["generation"] == index.manifest["generation"] and again.count() == 6


def test_unreachable_server_is_a_clear_error():
    with pytest.raises(PoseError, match="chroma run"):
        PoseIndex.open(url=f"http://127.0.0.1:{free_port()}", name="nothing")
    with pytest.raises(PoseError, match="http"):
        PoseIndex.open(url="ftp://example", name="nothing")
