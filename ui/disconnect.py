"""Cancel a running generation when its client goes away.

Gradio marks a session's jobs dead (``alive = False``) when the client's event stream closes
(a closed tab, a killed script), but a synchronous handler keeps running in its thread and
would hold the single GPU slot until the job ends. `cancel_on_disconnect` watches for that mark
and sets the job's cancel flag, which the engine checks at every denoising step.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import gradio as gr

POLL_S = 0.25


@contextlib.contextmanager
def cancel_on_disconnect(request: gr.Request | None, cancel: threading.Event) -> Iterator[threading.Event]:
    """Within the block, `cancel` is set as soon as the client of `request` disconnects."""
    context = gr.context.LocalContext
    blocks = context.blocks.get(None)
    event_id = context.event_id.get(None)  # this job's id in the queue
    session = getattr(request, "session_hash", None) if request is not None else None
    queue = getattr(blocks, "_queue", None)
    if queue is None or not (event_id or session):
        yield cancel
        return
    done = threading.Event()

    def watch() -> None:
        while not done.wait(POLL_S):
            if _disconnected(queue, event_id, session):
                cancel.set()
                return

    watcher = threading.Thread(target=watch, name="cancel-on-disconnect", daemon=True)
    watcher.start()
    try:
        yield cancel
    finally:
        done.set()


def _disconnected(queue, event_id: str | None, session: str | None) -> bool:
    """Whether Gradio marked this job (by event id, else any job of the session) dead."""
    for jobs in list(getattr(queue, "active_jobs", []) or []):
        for job in jobs or []:
            mine = job._id == event_id if event_id else getattr(job, "session_hash", None) == session
            if mine and not getattr(job, "alive", True):
                return True
    return False
