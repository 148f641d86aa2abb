"""The pose index on real Chroma with real MiniLM: exact search, exact people filter, stored scenes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pose_db.index.build import build_index, embedded_text
from pose_db.index.store import IndexMissing, PoseIndex, entry_from_record
from pose_db.scene.model import PoseError
from tests.helpers.entries import brute_force_top, tiny_entries


@pytest.fixture(scope="module")
def records(small_index):
    return list(small_index.records(include_embeddings=True))


def test_holds_every_entry_of_each_people_count(small_index, records):
    people = {r["metadata"]["people"] for r in records}
    assert {1, 2} <= people and small_index.people_counts == sorted(people)
    assert small_index.count() == len(records) == len({r["id"] for r in records})


def test_search_is_the_exact_cosine_top_k(small_index, records, minilm_embedder):
    for prompt in ["a person waving hello", "two friends hugging", "someone lying on the floor"]:
        query = minilm_embedder.encode([prompt])[0]
        hits = small_index.search(query, 10)
        assert [h.entry.id for h in hits] == brute_force_top(records, query, 10)
        stored = {r["id"]: r["embedding"] for r in records}
        for hit in hits:  # score is the cosine similarity of query and stored prompt vector
            assert hit.score == pytest.approx(float(stored[hit.entry.id] @ query), abs=1e-4)
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


@pytest.mark.parametrize("people", [1, 2, 3])
def test_people_filter_is_exact(small_index, records, minilm_embedder, people):
    query = minilm_embedder.encode(["people posing together for a photo"])[0]
    same = [r for r in records if r["metadata"]["people"] == people]
    hits = small_index.search(query, 8, people=people)
    assert [h.entry.id for h in hits] == brute_force_top(same, query, 8) if same else hits == []
    assert all(h.entry.people == people == len(h.entry.scene.people) for h in hits)


def test_hits_carry_the_entry_and_its_scene(small_index, records, minilm_embedder):
    record = records[len(records) // 2]
    hit = small_index.search(minilm_embedder.encode([embedded_text(record["prompt"])])[0], 1)[0]
    assert hit.entry.id == record["id"] and hit.score > 0.9  # < 1: stored vectors carry the action's centroid
    entry = entry_from_record(record)
    assert (hit.entry.prompt, hit.entry.action, hit.entry.category, hit.entry.view, hit.entry.source, hit.entry.profiles) == (
        entry.prompt, entry.action, entry.category, entry.view, entry.source, entry.profiles)
    assert hit.entry.action_name and hit.entry.source == "synthetic" and len(hit.entry.profiles) == hit.entry.people


def test_stored_scene_round_trips_to_a_hundredth_of_a_pixel(tmp_path, minilm_embedder):
    entries = tiny_entries()
    index = build_index(tmp_path / "idx", url="", entries=entries, embedder=minilm_embedder, progress=False)
    for entry in entries:
        hit = index.search(minilm_embedder.encode([entry.prompt])[0], 1, people=entry.people)[0]
        assert hit.entry.id == entry.id and (hit.entry.scene.width, hit.entry.scene.height) == (512, 512)
        for got, want in zip(hit.entry.scene.people, entry.scene.people):
            assert np.array_equal(got.visible, want.visible)
            np.testing.assert_allclose(got.xy[got.visible], want.xy[want.visible], atol=0.006)
    index.close()


def test_collections_use_cosine_and_no_chroma_embedding_function(small_index):
    for n in small_index.people_counts:
        config = small_index._partition(n).configuration
        assert config["hnsw"]["space"] == "cosine" and config.get("embedding_function") is None


def test_chroma_never_runs_its_default_model(tmp_path, minilm_embedder, monkeypatch):
    from chromadb.utils.embedding_functions import ONNXMiniLM_L6_V2

    def forbidden(*args, **kwargs):
        raise AssertionError("Chroma tried to use its own embedding model (it would download it)")

    monkeypatch.setattr(ONNXMiniLM_L6_V2, "__call__", forbidden)
    monkeypatch.setattr(ONNXMiniLM_L6_V2, "_download_model_if_not_exists", forbidden, raising=False)
    index = build_index(tmp_path / "idx", url="", entries=tiny_entries(), embedder=minilm_embedder, progress=False)
    assert index.search(minilm_embedder.encode(["a hug"])[0], 3)
    index.close()


def test_reopens_from_disk_in_a_new_process(small_index, minilm_embedder):
    query = minilm_embedder.encode(["a man waving"])[0]
    expected = [h.entry.id for h in small_index.search(query, 5)]
    script = ("import json, sys, numpy as np; from pose_db.index.store import PoseIndex; "
              "i = PoseIndex.open(sys.argv[1], url=''); q = np.array(json.loads(sys.argv[2]), np.float32); "
              "print(json.dumps([i.count(), [h.entry.id for h in i.search(q, 5)]]))")
    out = subprocess.run([sys.executable, "-c", script, small_index.location, json.dumps(query.tolist())],
                         capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(out.stdout) == [small_index.count(), expected]


@pytest.mark.parametrize("vector, k, message", [
    (np.ones(10), 3, "384-d"), (np.zeros(384), 3, "zero"), (np.full(384, np.nan), 3, "finite"),
    (np.ones(384), 0, "positive"),
])
def test_bad_queries_are_refused(small_index, vector, k, message):
    with pytest.raises(PoseError, match=message):
        small_index.search(vector, k)


def test_people_count_without_entries_gives_nothing(small_index, minilm_embedder):
    assert small_index.search(minilm_embedder.encode(["a crowd"])[0], 5, people=9) == []


def test_missing_index_says_how_to_build_it(tmp_path):
    with pytest.raises(IndexMissing, match="python -m pose_db.build"):
        PoseIndex.open(tmp_path / "absent", url="")
    (tmp_path / "empty").mkdir()
    with pytest.raises(IndexMissing, match="python -m pose_db.build"):
        PoseIndex.open(tmp_path / "empty", url="")
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.jpg").write_bytes(b"meow")
    with pytest.raises(IndexMissing):
        PoseIndex.open(tmp_path / "photos", url="")
    assert [p.name for p in (tmp_path / "empty").iterdir()] == []  # Chroma created nothing
    assert [p.name for p in (tmp_path / "photos").iterdir()] == ["cat.jpg"]


def test_bad_entries_are_refused_before_anything_is_written(tmp_path, minilm_embedder):
    entries = tiny_entries()
    entries[1].id = entries[0].id
    with pytest.raises(PoseError, match="unique"):
        build_index(tmp_path / "dup", url="", entries=entries, embedder=minilm_embedder, progress=False)
    entries = tiny_entries()
    entries[3].people = 1
    with pytest.raises(PoseError, match="people"):
        build_index(tmp_path / "count", url="", entries=entries, embedder=minilm_embedder, progress=False)
    assert not (tmp_path / "dup").exists() and not (tmp_path / "count").exists()


@pytest.mark.slow
def test_build_and_search_attempt_no_network(tmp_path):
    """Offline by construction: no DNS lookup or connection (Chroma telemetry, its ONNX model, the hub)."""
    script = f"""
import sys
attempts = []
def audit(event, args):
    if event == "socket.getaddrinfo" and args[0] not in ("localhost", "127.0.0.1", "::1", None):
        attempts.append((event, str(args[:2])))
    elif event == "socket.connect":
        address = args[1]
        if isinstance(address, tuple) and address[0] not in ("127.0.0.1", "::1", "localhost"):
            attempts.append((event, str(address)))
sys.addaudithook(audit)
from pose_db.index.build import build_index
from pose_db.index.embedder import Embedder
from pose_db.index.stats import index_stats
from tests.helpers.entries import tiny_entries
embedder = Embedder()
index = build_index({str(tmp_path / "idx")!r}, url="", entries=tiny_entries(), embedder=embedder, progress=False)
assert index.search(embedder.encode(["a hug"])[0], 2, people=2)[0].entry.action == "hug"
assert index_stats(index.records())["entries"] == 6
print("ATTEMPTS", attempts)
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_", "ASTRA_"))}
    done = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).resolve().parents[2], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ATTEMPTS []" in done.stdout, done.stdout
