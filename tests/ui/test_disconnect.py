"""A client that disconnects mid-generation frees the engine slot (issue 15, item 7), end to end.

User A starts a long generation on the launched studio (tiny engine) over Gradio's own queue
protocol, reads its progress, then drops the connection. User B's one-step generation must then
finish long before A's job would have: ``ui.disconnect.cancel_on_disconnect`` sees Gradio mark
A's job dead and the engine stops at its next step. Every bound is relative to A's own measured
step time, so a loaded machine slows both sides alike.
"""

from __future__ import annotations

import time

from tests.helpers.gradio_http import GOOD_GENERATE as GOOD
from tests.helpers.gradio_http import call, fn_index, start_and_drop

LONG_STEPS, LONG_SIDE = 60, 1024  # the most steps presets.yaml allows; 0.2-0.8 s a step on 2 CPUs
LONG = [*GOOD[:4], LONG_SIDE, LONG_SIDE, LONG_STEPS, *GOOD[7:]]  # user A's /generate


def test_a_dropped_client_frees_the_engine_for_the_next_user(studio_url):
    url = studio_url
    reached, step_s = start_and_drop(url, fn_index(url, "generate"), LONG)
    dropped = time.perf_counter()
    left_of_a = (LONG_STEPS - reached) * step_s  # what B would wait without cancel-on-disconnect
    event, payload = call(url, "generate", GOOD)  # user B: one step, 64 x 64
    waited = time.perf_counter() - dropped
    assert event == "complete" and payload[1]["num_inference_steps"] == 1
    assert left_of_a > 3, f"A's job is too short to tell ({left_of_a:.1f} s left)"
    assert waited < 0.5 * left_of_a, (f"B waited {waited:.1f} s; A had {left_of_a:.1f} s left "
                                      f"({step_s:.2f} s a step): A's slot was not freed")
