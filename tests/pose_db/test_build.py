"""Building the index: deterministic, atomic (a killed or interrupted build loses nothing), locked."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from pose_db.index.build import BuildBusy, blend_with_centroid, build_index, build_lock, embedded_text, ensure_index
from pose_db.index.grow import import_entries
from pose_db.index.stats import index_stats
from pose_db.index.store import PoseIndex
from pose_db.library.generate import generate_library
from pose_db.scene.openpose_io import write_openpose
from tests.helpers.entries import interrupted_entries, many_entries, tiny_entries

REPO = Path(__file__).resolve().parents[2]


def snapshot(index: PoseIndex) -> dict:
    return {r["id"]: r for r in index.records(include_embeddings=True)}


@pytest.mark.slow
def test_same_specs_and_seed_give_the_same_entries(tmp_path, minilm_embedder, small_index_actions):
    actions = small_index_actions[:2] + small_index_actions[-2:]
    built = [build_index(tmp_path / name, url="", seed=seed, actions=actions, variations=3,
                         embedder=minilm_embedder, progress=False) for name, seed in (("a", 0), ("b", 0), ("c", 1))]
    a, b, c = (snapshot(i) for i in built)
    assert a.keys() == b.keys() and len(a) >= 8
    for id_, record in a.items():
        assert (record["prompt"], record["metadata"]) == (b[id_]["prompt"], b[id_]["metadata"])
        np.testing.assert_allclose(record["embedding"], b[id_]["embedding"], atol=1e-6)
    assert {r["prompt"] for r in a.values()} != {r["prompt"] for r in c.values()}  # the seed matters
    for index in built:
        index.close()


@pytest.mark.slow
def test_generator_processes_give_the_same_library_and_one_gate_report(tmp_path, minilm_embedder):
    from pose_db.library.pool import GateCounts, action_ids, generate_entries

    ids = action_ids(None, None)[:16]  # the smallest build that starts worker processes
    here = GateCounts()
    expected = [(e.id, e.prompt, write_openpose(e.scene)) for e in generate_entries(ids, variations=2, workers=0,
                                                                                   gate=here)]
    index = build_index(tmp_path / "index", url="", actions=ids, variations=2, embedder=minilm_embedder,
                        progress=False, workers=2)
    report = index.build_report
    assert report.workers == 2 and report.entries == len(expected) == index.count()
    assert report.gate == here.to_json() and report.gate["kept"] == len(expected)
    assert report.gate["checked"] == report.gate["kept"] + sum(report.gate["rejected"].values())
    stored = {r["id"]: r["prompt"] for r in index.records()}
    assert stored == {id_: prompt for id_, prompt, _ in expected}
    live = (tmp_path / "index" / "CURRENT").read_text().strip()
    saved = json.loads((tmp_path / "index" / live / "build_report.json").read_text())
    assert saved["gate"] == report.gate and saved["entries"] == report.entries
    index.close()
    again = build_index(tmp_path / "index", url="", actions=ids, variations=2, embedder=minilm_embedder,
                        progress=False, workers=0)  # a rebuild reuses the vectors of unchanged prompts
    assert again.build_report.reused == len(expected) and again.build_report.embedded == 0
    assert {r["id"]: r["prompt"] for r in again.records()} == stored
    again.close()


def test_each_entry_is_blended_with_its_actions_centroid(tmp_path, minilm_embedder):
    entries = list(generate_library(actions=["wave_hello", "handshake"], variations=4))
    index = build_index(tmp_path / "index", url="", entries=entries, embedder=minilm_embedder,
                        progress=False, workers=0)
    stored = {r["id"]: r["embedding"] for r in index.records(include_embeddings=True)}
    for action in ("wave_hello", "handshake"):
        group = [e for e in entries if e.action == action]
        raw = minilm_embedder.encode([embedded_text(e.prompt) for e in group])
        got = np.stack([stored[e.id] for e in group])
        assert np.allclose(got, blend_with_centroid(raw), atol=1e-5)
        assert not np.allclose(got, raw, atol=1e-3)
        assert np.allclose(np.linalg.norm(got, axis=1), 1, atol=1e-5)
    index.close()


@pytest.mark.slow
def test_a_killed_build_leaves_the_old_index_answering(tmp_path, minilm_embedder):
    out = tmp_path / "index"
    old = build_index(out, url="", entries=tiny_entries(), embedder=minilm_embedder, progress=False)
    generation, count = old.manifest["generation"], old.count()
    old.close()
    marker = tmp_path / "halfway"
    script = f"""
import sys, time
from pathlib import Path
sys.path.insert(0, {str(REPO)!r})
from pose_db.index.build import build_index
from tests.helpers.entries import many_entries

def stalling():
    for i, entry in enumerate(many_entries(600)):
        if i == 300:  # the first batch of 256 is in Chroma by now
            Path({str(marker)!r}).touch()
            time.sleep(600)
        yield entry

build_index({str(out)!r}, url="", entries=stalling(), progress=False)
"""
    build = subprocess.Popen([sys.executable, "-c", script], cwd=REPO)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert build.poll() is None and time.monotonic() < deadline, "the build never got halfway"
            time.sleep(0.2)
        staging = list(out.glob(".building-*"))
        assert staging and any(staging[0].iterdir())  # half a new generation exists beside the live one
    finally:
        build.send_signal(signal.SIGKILL)
        build.wait(30)
    index = PoseIndex.open(out, url="")
    assert (index.manifest["generation"], index.count()) == (generation, count)
    assert index.search(minilm_embedder.encode(["a man waving"])[0], 1)[0].entry.action == "wave"
    index.close()
    rebuilt = build_index(out, url="", entries=many_entries(10), embedder=minilm_embedder, progress=False)
    assert rebuilt.count() == 10 and not list(out.glob(".building-*"))  # leftovers cleaned
    assert sorted(p.name for p in out.iterdir()) == ["CURRENT", out.joinpath("CURRENT").read_text().strip()]
    rebuilt.close()


@pytest.mark.slow
def test_ctrl_c_on_the_build_cli_keeps_the_old_index_and_stops_its_workers(tmp_path, minilm_embedder,
                                                                            small_index_actions):
    out = tmp_path / "index"
    old = build_index(out, url="", entries=tiny_entries(), embedder=minilm_embedder, progress=False)
    generation = old.manifest["generation"]
    old.close()
    log = tmp_path / "build.log"
    with open(log, "wb") as stderr:
        build = subprocess.Popen([sys.executable, "-m", "pose_db.build", "--out", str(out), "--quiet", "--workers", "1",
                                  "--actions", ",".join(small_index_actions[:16]), "--variations", "30"],
                                 cwd=REPO, stderr=stderr, env={k: v for k, v in os.environ.items()
                                                               if not k.startswith("ASTRA_")})
        try:
            deadline = time.monotonic() + 180
            while "Building pose index: " not in log.read_text():  # a first batch is in the new folder
                assert build.poll() is None, log.read_text()[-2000:]
                assert time.monotonic() < deadline, "the build never got going"
                time.sleep(0.2)
            workers = children(build.pid)
            build.send_signal(signal.SIGINT)
            assert build.wait(60) == 130
        finally:
            if build.poll() is None:
                build.kill()
    assert "Interrupted: the previous index (if any) is unchanged." in log.read_text()
    assert not list(out.glob(".building-*"))
    index = PoseIndex.open(out, url="")
    assert (index.manifest["generation"], index.count()) == (generation, len(tiny_entries()))
    index.close()
    assert workers  # the generator ran in a worker process ...
    time.sleep(0.5)
    assert not [pid for pid in workers if alive(pid)]  # ... which did not outlive the build


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_ctrl_c_mid_build_keeps_the_old_index(tmp_path, minilm_embedder):
    out = tmp_path / "index"
    build_index(out, url="", entries=tiny_entries(), embedder=minilm_embedder, progress=False).close()

    with pytest.raises(KeyboardInterrupt):
        build_index(out, url="", entries=interrupted_entries(), embedder=minilm_embedder, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".index.lock", "index"]
    assert len([p for p in out.iterdir() if p.name.startswith("g")]) == 1 and not list(out.glob(".building-*"))
    index = PoseIndex.open(out, url="")
    assert index.count() == len(tiny_entries())
    index.close()


def test_a_crash_before_the_pointer_moves_keeps_the_live_generation(tmp_path, minilm_embedder):
    out = tmp_path / "index"
    first = build_index(out, url="", entries=tiny_entries(), embedder=minilm_embedder, progress=False)
    generation = first.manifest["generation"]
    first.close()
    # The moment after a build renamed its finished folder in, before it replaced CURRENT, plus
    # the half-written folder of a build killed earlier.
    other = build_index(tmp_path / "other", url="", entries=many_entries(3), embedder=minilm_embedder, progress=False)
    other.close()
    orphan = (tmp_path / "other" / "CURRENT").read_text().strip()
    os.replace(tmp_path / "other" / orphan, out / orphan)
    (out / ".building-999999").mkdir()
    (out / ".building-999999" / "chroma.sqlite3").write_bytes(b"half")
    index = ensure_index(out, url="", embedder=minilm_embedder, entries=many_entries(5), progress=False)
    assert index.manifest["generation"] == generation and index.count() == len(tiny_entries())
    index.close()
    rebuilt = build_index(out, url="", entries=many_entries(4), embedder=minilm_embedder, progress=False)
    assert rebuilt.count() == 4
    assert sorted(p.name for p in out.iterdir()) == ["CURRENT", (out / "CURRENT").read_text().strip()]
    rebuilt.close()


def test_two_builds_do_not_race(tmp_path, minilm_embedder):
    out = tmp_path / "index"
    with build_lock(None, None, out, wait=False):
        with pytest.raises(BuildBusy, match="wait for it to finish"):
            build_index(out, url="", entries=tiny_entries(), embedder=minilm_embedder, progress=False)
    assert not out.exists()


def test_ensure_index_builds_once_with_progress_in_the_log(tmp_path, minilm_embedder, caplog):
    out = tmp_path / "index"
    with caplog.at_level(logging.INFO, logger="pose_db.index.build"):
        first = ensure_index(out, url="", embedder=minilm_embedder, entries=tiny_entries(), progress=False)
    assert "building it now" in caplog.text and "entries in" in caplog.text
    generation = first.manifest["generation"]
    first.close()
    again = ensure_index(out, url="", embedder=minilm_embedder, entries=many_entries(3), progress=False)
    assert again.manifest["generation"] == generation and again.count() == len(tiny_entries())
    again.close()


def test_a_rebuild_keeps_imported_entries(tmp_path, minilm_embedder):
    out = tmp_path / "index"
    build_index(out, url="", entries=tiny_entries(), embedder=minilm_embedder, progress=False).close()
    imported = tiny_entries(prefix="coco", source="coco")[:2]
    assert import_entries(imported, out, embedder=minilm_embedder, progress=False) == 2
    rebuilt = build_index(out, url="", entries=many_entries(5), embedder=minilm_embedder, progress=False)
    assert index_stats(rebuilt.records())["sources"] == {"coco": 2, "synthetic": 5}
    rebuilt.close()
    dropped = build_index(out, url="", entries=many_entries(5), embedder=minilm_embedder, progress=False,
                          keep_imported=False)
    assert index_stats(dropped.records())["sources"] == {"synthetic": 5}
    dropped.close()


def run_module(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ASTRA_")} | (env or {})
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env=environ)


@pytest.mark.slow
def test_build_and_stats_clis(tmp_path, small_index_actions):
    out = tmp_path / "index"
    actions = ",".join(small_index_actions[:1] + small_index_actions[-1:])
    built = run_module("pose_db.build", "--out", str(out), "--actions", actions, "--variations", "3")
    assert built.returncode == 0, built.stderr
    assert "Building pose index" in built.stderr  # the progress bar
    stats = run_module("pose_db.stats", "--json", env={"ASTRA_POSE_INDEX": str(out)})
    assert stats.returncode == 0, stats.stderr
    counts = json.loads(stats.stdout)
    assert set(counts) == {"entries", "actions", "actions_by_people", "categories", "multi_person_entries",
                           "max_people", "sources"}
    assert counts["actions"] == 2 and counts["entries"] == int(built.stdout.split()[0])
    assert {"1", "2", "3"} <= set(counts["actions_by_people"]) and counts["sources"] == {"synthetic": counts["entries"]}
    assert counts["multi_person_entries"] > 0 and counts["max_people"] >= 2


def test_build_cli_refuses_bad_input_and_touches_nothing(tmp_path):
    unknown = run_module("pose_db.build", "--out", str(tmp_path / "x"), "--actions", "no_such_action")
    assert unknown.returncode == 2 and "unknown action" in unknown.stderr and not (tmp_path / "x").exists()
    precious = tmp_path / "photos"
    precious.mkdir()
    (precious / "holiday.jpg").write_bytes(b"not really")
    clash = run_module("pose_db.build", "--out", str(precious), "--variations", "1")
    assert clash.returncode == 2 and "is not a pose index" in clash.stderr
    assert [p.name for p in precious.iterdir()] == ["holiday.jpg"]
    missing = run_module("pose_db.stats", "--index", str(tmp_path / "nothing"))
    assert missing.returncode == 2 and "python -m pose_db.build" in missing.stderr


@pytest.mark.slow
def test_kill_9_of_a_build_leaves_no_orphan_processes(tmp_path, small_index_actions):
    out = tmp_path / "index"
    build = subprocess.Popen([sys.executable, "-m", "pose_db.build", "--out", str(out), "--quiet", "--workers", "2",
                              "--actions", ",".join(small_index_actions[:16]), "--variations", "30"],
                             cwd=REPO, stderr=subprocess.DEVNULL, env={k: v for k, v in os.environ.items()
                                                                       if not k.startswith("ASTRA_")})
    try:
        deadline = time.monotonic() + 180
        descendants: list[int] = []
        while len(descendants) < 3:  # two generator workers and multiprocessing's resource tracker
            assert build.poll() is None and time.monotonic() < deadline, "the build never started its workers"
            time.sleep(0.2)
            descendants = children(build.pid)
        time.sleep(1.0)  # the workers are busy generating
        build.send_signal(signal.SIGKILL)
        build.wait(30)
    finally:
        if build.poll() is None:
            build.kill()
    deadline = time.monotonic() + 10
    while [pid for pid in descendants if alive(pid)] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [pid for pid in descendants if alive(pid)], "workers outlived their killed build"
    assert not (out / "CURRENT").exists()  # and the killed build published nothing
