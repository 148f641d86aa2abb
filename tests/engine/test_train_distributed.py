"""The tiny run under ``accelerate launch --num_processes 2 --cpu``: two processes, one adapter."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_two_process_cpu_run_writes_one_adapter(tmp_path):
    accelerate = Path(sys.executable).with_name("accelerate")
    out = tmp_path / "adapter"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [str(accelerate), "launch", "--num_processes", "2", "--num_machines", "1", "--cpu", "--mixed_precision", "no",
         "--main_process_port", "29517", "-m", "engine.train", "--tiny", "--steps", "6", "--out", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=170)
    assert done.returncode == 0, done.stderr[-3000:]
    results = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(results) == 1 and results[0]["steps"] == 6  # only the main process reports
    assert (out / "astra_config.json").is_file() and (out / "transformer_lora.safetensors").is_file()
    assert (out / "dsm.safetensors").is_file()
    assert not list(out.parent.glob(".adapter*")) and not list(out.glob(".*adapter-*"))
    rows = (out / "logs" / "train.csv").read_text().splitlines()
    assert rows[0].startswith("step,loss") and len(rows) == 1 + 6 + 1  # 6 steps + the final eval row
    from engine import AstraPipeline

    pipe = AstraPipeline.tiny(seed=0, adapter=str(out))
    assert pipe.dsm is not None
