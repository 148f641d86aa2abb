"""Several resident engines (``engine.pool``): tiny engines on the CPU stand in for GPUs."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from engine.errors import EngineError, GenerationCancelled
from engine.pool import EnginePool, parse_gpus
from engine.request import GenerationRequest
from engine.service import EngineConfig, EngineService

STEPS = 3
TIMEOUT_S = 120


def _request(seed: int = 5) -> GenerationRequest:
    return GenerationRequest(prompt="Mia waving", height=64, width=64, num_inference_steps=STEPS, seed=seed)


@pytest.fixture(scope="module")
def pool():
    return EnginePool.tiny(2)


def _run_async(pool, request, progress=None, cancel=None):
    box = {}

    def target():
        try:
            box["result"] = pool.generate(request, progress=progress, cancel=cancel)
        except Exception as error:  # handed to the test
            box["error"] = error

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, box


def test_two_jobs_run_at_once_on_two_engines(pool):
    """Each job waits inside its first step for the other to arrive: a pool that ran one job at a
    time would never let both reach the barrier."""
    assert pool.concurrency == 2 and not pool.busy
    barrier = threading.Barrier(2, timeout=TIMEOUT_S)
    steps = {0: [], 1: []}

    def progress_for(job):
        def progress(step, total):
            steps[job].append(step)
            if step == 1:
                barrier.wait()
        return progress

    jobs = [_run_async(pool, _request(seed=j), progress=progress_for(j)) for j in (0, 1)]
    for thread, _ in jobs:
        thread.join(TIMEOUT_S)
    for _, box in jobs:
        assert "error" not in box, box.get("error")
    assert steps == {0: list(range(STEPS + 1)), 1: list(range(STEPS + 1))}  # progress stays per job


def test_stop_is_per_job_and_a_waiting_job_can_stop(pool):
    """Job A is stopped mid-run while job B, on the other engine, finishes; a third job that
    found both engines busy is stopped while it waits, and the pool stays usable."""
    both_running = threading.Barrier(3, timeout=TIMEOUT_S)
    release_b = threading.Event()
    stop_a, stop_c = threading.Event(), threading.Event()

    def progress_a(step, total):
        if step == 1:
            both_running.wait()
            stop_a.set()  # the user presses Stop on job A only

    def progress_b(step, total):
        if step == 1:
            both_running.wait()
            release_b.wait(TIMEOUT_S)

    a = _run_async(pool, _request(seed=1), progress=progress_a, cancel=stop_a)
    b = _run_async(pool, _request(seed=2), progress=progress_b)
    both_running.wait()
    a[0].join(TIMEOUT_S)
    assert isinstance(a[1].get("error"), GenerationCancelled)
    # Engine A is free again: a third job would run there; make both busy first by holding B and
    # claiming A's engine by hand, so job C must wait, then stop it while it waits.
    free = [engine for engine in pool.engines if engine.try_acquire()]
    assert len(free) == 1 and pool.busy
    c = _run_async(pool, _request(seed=3), cancel=stop_c)
    stop_c.set()
    c[0].join(TIMEOUT_S)
    assert isinstance(c[1].get("error"), GenerationCancelled) and "waiting" in str(c[1]["error"])
    free[0].release()
    release_b.set()
    b[0].join(TIMEOUT_S)
    assert "error" not in b[1] and b[1]["result"].image.size == (64, 64)
    again = pool.generate(_request(seed=2))
    assert np.array_equal(np.asarray(again.image), np.asarray(b[1]["result"].image))  # same seed, same image


def test_pool_info_lists_its_engines(pool):
    info = pool.info()
    assert info.kind == "tiny" and info.device == "cpu"
    assert info.message.startswith("2 engines (cpu, cpu)") and "noise" in info.message
    assert EngineService.tiny().concurrency == 1


def test_pool_refuses_nothing_or_unavailable_engines():
    with pytest.raises(EngineError, match="at least one"):
        EnginePool([])
    with pytest.raises(EngineError, match="unavailable"):
        EnginePool([EngineService.unavailable("no GPU")])


def test_gpus_option_is_parsed_and_checked_before_loading():
    assert parse_gpus("0,1, 3") == [0, 1, 3] and parse_gpus(None) == [] and parse_gpus("") == []
    for bad in ("0,x", "1,1", "-1"):
        with pytest.raises(EngineError, match="--gpus"):
            parse_gpus(bad)
    with pytest.raises(EngineError, match="PyTorch sees 0 CUDA GPU"):  # no GPU on this machine
        EnginePool.load(EngineConfig(), [0, 1])
