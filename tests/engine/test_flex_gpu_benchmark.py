"""benchmarks/gpu_engine.py: the CPU refuses with a message, and --dry-run prints the GPU table."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("gpu_engine", ROOT / "benchmarks" / "gpu_engine.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_engine"] = module
    spec.loader.exec_module(module)
    return module


def test_the_rows_cover_the_issue(bench):
    rows = {(c.refs, c.pose_scale, c.binding, c.compiled, c.fp8) for c in bench.FULL}
    assert {(0, None, None, False, False), (2, None, None, False, False), (2, 1, None, False, False),
            (2, 2, None, False, False), (2, 1, "dense", False, False), (2, 1, "flex", False, False),
            (2, 1, "dense", True, False), (2, 1, "flex", True, False), (2, 1, "flex", False, True),
            (2, 1, "flex", True, True)} <= rows
    assert set(bench.QUICK) < set(bench.FULL)
    assert bench.FLUX_DEV_CONFIG["num_layers"] == 19 and bench.FLUX_DEV_CONFIG["num_single_layers"] == 38
    assert bench.FLUX_DEV_CONFIG["num_attention_heads"] * bench.FLUX_DEV_CONFIG["attention_head_dim"] == 3072


@pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU message only")
def test_without_a_gpu_it_exits_with_a_message(bench, capsys):
    assert bench.main([]) == 2
    assert "needs a CUDA GPU" in capsys.readouterr().err


@pytest.mark.slow
def test_dry_run_prints_the_table_of_every_quick_row(bench, capsys):
    assert bench.main(["--dry-run", "--quick", "--repeats", "1", "--warmup", "1"]) == 0
    out = capsys.readouterr().out
    table = [line for line in out.splitlines() if line.startswith("|")]
    assert table[0] == "| case | weights | mode | tokens | ms / step | x text-only | peak GiB | first call s |"
    assert len(table) == 2 + len(bench.QUICK)
    assert sum("| fp8 | compiled |" in line or "| fp8 | eager |" in line for line in table) == 2
    assert any("flex binding | fp32 | compiled" in line for line in table)
