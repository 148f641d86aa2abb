"""engine.benchmark runner and report: end to end on the tiny engine (noise images), resume,
sharding, the CLI and the table."""

from __future__ import annotations

import json

import pytest

from engine.benchmark.__main__ import main
from engine.benchmark.build import build_coco
from engine.benchmark.metrics import ClipScorer, DinoScorer
from engine.benchmark.report import table
from engine.benchmark.run import finished, run_benchmark
from engine.service import EngineService
from pose_db.scene.openpose_io import load_openpose
from pose_db.scene.transforms import fit_scene
from tests.helpers.benchmark import save_tiny_clip, save_tiny_dino, write_coco

STEPS = 2


class CountingEngine:
    """The tiny engine, counting generations."""

    def __init__(self, engine) -> None:
        self.engine, self.calls = engine, []

    def info(self):
        return self.engine.info()

    def generate(self, request):
        self.calls.append(request)
        return self.engine.generate(request)


class TruthDetector:
    """Returns the benchmark's own pose for the sample (looked up by generated image size order),
    minus its last person: OKS plumbing with a known answer (one missing person per 2-person image)."""

    def __init__(self, scenes) -> None:
        self.scenes = list(scenes)

    def detect(self, image, min_keypoints: int = 1):
        scene = fit_scene(self.scenes.pop(0), *image.size)
        scene.people = scene.people[:1]
        return scene


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    kp, cap, images = write_coco(root / "coco")
    build_coco(kp, cap, images, root / "bench", n=3)
    models = tmp_path_factory.mktemp("models")
    return root / "bench", save_tiny_clip(models / "clip"), save_tiny_dino(models / "dino")


@pytest.fixture(scope="module")
def tiny():
    return EngineService.tiny()


def _poses(bench):
    lines = [json.loads(x) for x in (bench / "train.jsonl").read_text().splitlines()]
    return [load_openpose(bench / line["pose"]) for line in lines]


def test_runner_end_to_end_resumes_and_reports(setup, tiny, tmp_path, capsys):
    bench, clip_dir, dino_dir = setup
    clip, dino = ClipScorer.load(clip_dir), DinoScorer.load(dino_dir)
    engine, out, logs = CountingEngine(tiny), tmp_path / "results.json", []
    results = run_benchmark(bench, out, engine, detector=TruthDetector(_poses(bench)), clip=clip, dino=dino,
                            resolution=96, steps=STEPS, log=logs.append)
    assert len(engine.calls) == 3 and all(r.num_inference_steps == STEPS for r in engine.calls)
    assert any("images are noise" in line for line in logs)
    assert results["n"] == 3 and results["noise"] is True and results["mode"] == "astra"
    rows = results["samples"]
    # image 3 (one person) and image 1 (one person): perfect; image 2 (two people): one missing -> 1/2
    assert [r["oks"] for r in rows] == pytest.approx([1.0, 0.5, 1.0])
    assert [r["missing"] for r in rows] == [0, 1, 0] and results["missing"] == 1
    assert results["metrics"]["oks"] == pytest.approx(2.5 / 3)
    # keypoint AP: 3 of the 4 people found, each perfectly -> precision 1 up to recall 0.75 (76 of 101 points)
    assert results["variants"]["keypoint_ap"] == pytest.approx(76 / 101)
    assert all(0.0 <= r["oks_unmapped"] <= 1.0 for r in rows) and results["variants"]["oks_unmapped"] is not None
    for key in ("clip_i", "clip_t", "dino"):
        assert all(-1.0 <= r[key] <= 1.0 for r in rows)
        assert results["metrics"][key] == pytest.approx(sum(r[key] for r in rows) / 3)
    assert len(engine.calls[1].subjects) == 2 and engine.calls[1].pose is not None
    assert (tmp_path / "results_worst.png").is_file()
    assert json.loads(out.read_text())["metrics"] == results["metrics"]
    # resume: everything done -> nothing generated again
    again = CountingEngine(tiny)
    assert run_benchmark(bench, out, again, resolution=96, steps=STEPS, log=logs.append)["n"] == 3
    assert again.calls == []
    # an interruption after one sample: only the other two are generated
    part = tmp_path / "results.json.part0.jsonl"
    part.write_text(part.read_text().splitlines()[0] + "\n" + '{"index": 1, "torn')
    resumed = CountingEngine(tiny)
    out2 = run_benchmark(bench, out, resumed, clip=clip, resolution=96, steps=STEPS, log=logs.append)
    assert [r.seed for r in resumed.calls] == [1, 2] and out2["n"] == 3
    assert out2["samples"][0]["oks"] == pytest.approx(1.0) and out2["samples"][1]["oks"] is None
    text = table([out])
    assert "| results" in text and "results.json" in text and "noise" in text and "astra" in text
    assert f"{out2['metrics']['clip_i']:.4f}" in text


def test_sharding_splits_samples_and_the_last_shard_merges(setup, tiny, tmp_path):
    bench, _, _ = setup
    out = tmp_path / "r.json"
    first = CountingEngine(tiny)
    assert run_benchmark(bench, out, first, resolution=96, steps=STEPS, rank=0, world=2, log=lambda s: None) is None
    assert [r.seed for r in first.calls] == [0, 2] and not out.exists()
    second = CountingEngine(tiny)
    merged = run_benchmark(bench, out, second, resolution=96, steps=STEPS, rank=1, world=2, log=lambda s: None)
    assert [r.seed for r in second.calls] == [1]
    assert [r["index"] for r in merged["samples"]] == [0, 1, 2] and sorted(finished(out)) == [0, 1, 2]


def test_cli_run_and_report(setup, tmp_path, capsys, monkeypatch):
    bench, clip_dir, dino_dir = setup
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    out = tmp_path / "cli.json"
    code = main(["run", "--bench", str(bench), "--out", str(out), "--engine", "tiny", "--mode", "public",
                 "--resolution", "96", "--steps", str(STEPS), "--limit", "2", "--detector", "none",
                 "--clip", str(clip_dir), "--dino", str(dino_dir)])
    printed = capsys.readouterr().out
    assert code == 0 and "images are noise" in printed and "| public" in printed
    data = json.loads(out.read_text())
    assert data["n"] == 2 and data["mode"] == "public" and data["metrics"]["oks"] is None
    assert main(["report", str(out), str(out), "--paper"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("| cli.json") == 2 and "0.0452" in printed and "not standard COCO OKS" in printed
    assert main(["report", str(tmp_path / "missing.json")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["run", "--bench", str(bench), "--out", str(out), "--engine", "tiny", "--detector", "none",
                 "--clip", str(tmp_path / "no-clip"), "--dino", "none"]) == 2
    assert "CLIP model folder" in capsys.readouterr().err


def test_shard_reads_the_launchers_environment(monkeypatch):
    from engine.benchmark.run import shard
    from engine.errors import EngineError

    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert shard() == (0, 1)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert shard() == (1, 2)
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(EngineError, match="outside WORLD_SIZE"):
        shard()


@pytest.mark.slow
def test_accelerate_launch_runs_one_slice_per_process(setup, tmp_path):
    """`accelerate launch` (torchrun underneath; on CPU `--multi_gpu` still starts the processes, `--cpu`
    would start one) gives each process its RANK: two part files, one merge."""
    import os
    import socket
    import subprocess
    import sys
    from pathlib import Path

    bench, _, _ = setup
    out = tmp_path / "launched.json"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    accelerate = Path(sys.executable).with_name("accelerate")
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    done = subprocess.run([str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                           "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(port),
                           "-m", "engine.benchmark", "run", "--bench", str(bench), "--out", str(out),
                           "--engine", "tiny", "--resolution", "96", "--steps", str(STEPS), "--detector", "none",
                           "--clip", "none", "--dino", "none"],
                          capture_output=True, text=True, timeout=600, env={**env, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "[0/2]" in done.stdout and "[1/2]" in done.stdout
    parts = {rank: [json.loads(x)["index"] for x in (tmp_path / f"launched.json.part{rank}.jsonl").read_text().splitlines()]
             for rank in (0, 1)}
    assert parts == {0: [0, 2], 1: [1]}
    assert [r["index"] for r in json.loads(out.read_text())["samples"]] == [0, 1, 2]
