"""Engine test fixtures."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def one_cpu_thread():
    """Every engine test module runs with one intra-op thread: tiny tensors gain nothing from
    threads, and on a busy CI box OpenMP's barrier spinning made the tiny pipeline 20-40x slower
    with 2 threads than with 1."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
