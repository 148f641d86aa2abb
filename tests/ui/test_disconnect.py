"""A client that disconnects mid-generation frees the engine slot (issue 15, item 7), end to end.

User A starts a long generation on the launched studio (tiny engine) over Gradio's own queue
protocol, reads its progress, then drops the connection. User B's one-step generation must then
finish long before A's job would have: ``ui.disconnect.cancel_on_disconnect`` sees Gradio mark
A's job dead and the engine stops at its next step. Every bound is relative to A's own measured
step time, so a loaded machine slows both sides alike.
"""

from __future__ import annotations

import json
import time
import uuid

import httpx

from tests.helpers.gradio_http import GOOD_GENERATE as GOOD
from tests.helpers.gradio_http import call

LONG_STEPS, LONG_SIDE = 60, 1024  # the most steps presets.yaml allows; 0.2-0.8 s a step on 2 CPUs


def _fn_index(demo, api_name: str) -> int:
    return next(i for i, fn in demo.fns.items() if fn.api_name == api_name)


def start_and_drop(demo, url: str, steps_seen: int = 5) -> tuple[int, float]:
    """Start A's long job, read progress up to step ``steps_seen``, close the connection.
    Returns (the step A had reached, seconds per step measured from A's progress)."""
    session = uuid.uuid4().hex
    data = list(GOOD)
    data[4:7] = [LONG_SIDE, LONG_SIDE, LONG_STEPS]
    joined = httpx.post(f"{url}gradio_api/queue/join", timeout=60,
                        json={"data": data, "fn_index": _fn_index(demo, "generate"),
                              "session_hash": session, "event_data": None, "trigger_id": None})
    joined.raise_for_status()
    seen: dict[int, float] = {}
    with httpx.Client(timeout=120) as http, \
            http.stream("GET", f"{url}gradio_api/queue/data", params={"session_hash": session}) as stream:
        for line in stream.iter_lines():
            if not line.startswith("data:"):
                continue
            message = json.loads(line.removeprefix("data:"))
            assert message.get("msg") != "process_completed", f"A ended before it was dropped: {message}"
            for unit in (message.get("progress_data") or []) if message.get("msg") == "progress" else []:
                if unit.get("index") is not None:
                    seen.setdefault(int(unit["index"]), time.perf_counter())
            if len(seen) >= 2 and max(seen) >= steps_seen:
                break
    # Leaving both blocks closed A's only connection: A is gone, mid-job.
    first, last = min(seen), max(seen)
    return last, (seen[last] - seen[first]) / (last - first)


def test_a_dropped_client_frees_the_engine_for_the_next_user(studio):
    demo, url = studio
    reached, step_s = start_and_drop(demo, url)
    dropped = time.perf_counter()
    left_of_a = (LONG_STEPS - reached) * step_s  # what B would wait without cancel-on-disconnect
    event, payload = call(url, "generate", GOOD)  # user B: one step, 64 x 64
    waited = time.perf_counter() - dropped
    assert event == "complete" and payload[1]["num_inference_steps"] == 1
    assert left_of_a > 3, f"A's job is too short to tell ({left_of_a:.1f} s left)"
    assert waited < 0.5 * left_of_a, (f"B waited {waited:.1f} s; A had {left_of_a:.1f} s left "
                                      f"({step_s:.2f} s a step): A's slot was not freed")
