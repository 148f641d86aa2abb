"""Several resident engines, one per GPU: ``python app.py --gpus 0,1,2,3``.

Each GPU holds its own :class:`~engine.service.EngineService` (weights loaded once per GPU and
kept there); a job runs on the first free engine and the UI's GPU queue admits as many jobs at
once as there are engines (:attr:`EnginePool.concurrency`). Progress and Stop stay per job: the
job's own ``progress`` callback and ``cancel`` event go to the engine that runs it, and a job
still waiting for a free engine can be stopped while it waits.

The pool has the service's interface (``info``, ``generate``, ``busy``, ``concurrency``), so the
studio takes either. Past one machine we build nothing: run one studio per machine behind a load
balancer with sticky sessions (Gradio's queue keeps a session's events on the server that holds
it), or serve the engines with Ray Serve's Gradio integration.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import replace

from engine.errors import EngineError, GenerationCancelled
from engine.request import EngineInfo, GenerationRequest, GenerationResult
from engine.service import EngineConfig, EngineService, Progress

_WAIT_POLL_S = 0.05


def parse_gpus(text: str | None) -> list[int]:
    """``"0,1,3"`` -> [0, 1, 3]; None or "" -> []. Raises :class:`EngineError` on anything else."""
    if not text:
        return []
    try:
        gpus = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as error:
        raise EngineError(f"--gpus takes GPU indices separated by commas (e.g. 0,1,2,3), not {text!r}.") from error
    if any(g < 0 for g in gpus) or len(set(gpus)) != len(gpus):
        raise EngineError(f"--gpus needs distinct GPU indices >= 0, got {text!r}.")
    return gpus


class EnginePool:
    """Resident engines served as one; see the module docstring.

    Args:
        engines: the loaded engines (at least one; an unavailable one is refused).
    """

    def __init__(self, engines: Sequence[EngineService]) -> None:
        engines = list(engines)
        if not engines:
            raise EngineError("An engine pool needs at least one engine.")
        if any(engine.pipe is None for engine in engines):
            raise EngineError("Every engine of a pool must be loaded; one is unavailable.")
        self._engines = engines
        self._released = threading.Condition()

    @classmethod
    def load(cls, config: EngineConfig, gpus: Sequence[int]) -> EnginePool:
        """One engine per listed CUDA GPU, each loaded with ``config`` on ``cuda:<index>``.

        Raises :class:`EngineError` before loading anything when a listed GPU does not exist.
        """
        import torch

        if not gpus:
            raise EngineError("--gpus lists no GPU; give indices such as 0,1.")
        visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
        missing = [g for g in gpus if g >= visible]
        if missing:
            raise EngineError(f"GPU(s) {', '.join(map(str, missing))} asked for with --gpus, but PyTorch sees "
                              f"{visible} CUDA GPU(s); list indices below {visible} (CUDA_VISIBLE_DEVICES renumbers).")
        return cls([EngineService.load(replace(config, device=f"cuda:{g}")) for g in gpus])

    @classmethod
    def tiny(cls, count: int, seed: int = 0) -> EnginePool:
        """``count`` tiny engines on the CPU (tests, UI development): the same code path as GPUs."""
        return cls([EngineService.tiny(seed=seed) for _ in range(count)])

    # ----------------------------------------------------------------------------- state

    @property
    def engines(self) -> list[EngineService]:
        return list(self._engines)

    @property
    def concurrency(self) -> int:
        """Jobs that can run at once: one per engine (the UI's GPU queue limit)."""
        return len(self._engines)

    @property
    def busy(self) -> bool:
        """Whether every engine is running a job."""
        return all(engine.busy for engine in self._engines)

    @property
    def pipe(self):
        """The first engine's pipeline (for callers that inspect one; use :meth:`generate` to run)."""
        return self._engines[0].pipe

    def info(self) -> EngineInfo:
        """The first engine's info; the message lists every engine's device."""
        first = self._engines[0].info()
        devices = ", ".join(engine.info().device for engine in self._engines)
        message = f"{len(self._engines)} engines ({devices})" + (f"; {first.message}" if first.message else "")
        return replace(first, message=message)

    # ----------------------------------------------------------------------------- generation

    def generate(self, request: GenerationRequest, progress: Progress | None = None,
                 cancel: threading.Event | None = None) -> GenerationResult:
        """Run ``request`` on the first free engine (waiting, cancellably, while all are busy).

        Same contract as :meth:`EngineService.generate`; the result's ``info`` names the engine
        (its device) that ran the job.
        """
        if cancel is not None and cancel.is_set():
            raise GenerationCancelled("Stopped before the first step.")
        engine = self._claim(cancel)
        try:
            return engine.run_claimed(request, progress, cancel)
        finally:
            engine.release()
            with self._released:
                self._released.notify()

    def _claim(self, cancel: threading.Event | None) -> EngineService:
        with self._released:
            while True:
                for engine in self._engines:
                    if engine.try_acquire():
                        return engine
                if cancel is not None and cancel.is_set():
                    raise GenerationCancelled("Stopped while waiting for a free engine.")
                self._released.wait(timeout=_WAIT_POLL_S)
