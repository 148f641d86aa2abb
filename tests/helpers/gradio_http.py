"""Raw HTTP calls to a launched studio, as any script can make them (no gradio_client).

``call`` posts to ``/gradio_api/call/<api_name>`` and reads the answer's event stream;
``GOOD_GENERATE`` is a valid one-step /generate (64 x 64, tiny engine) to vary one value of.
"""

from __future__ import annotations

import json

import httpx

# prompt, subject_images, subject_names, pose, width, height, steps, guidance, seed,
# binding_strength, controlnet_conditioning_scale, control_guidance_start, control_guidance_end
GOOD_GENERATE = ["a man waves", [], [], None, 64, 64, 1, 3.5, 1, 1.0, None, None, None]


def call(url: str, api: str, data: list | None = None, body: str | None = None,
         timeout: float = 120) -> tuple[str, object]:
    """(event, payload) of one call: "complete" with the outputs, or "error" with
    ``{"error": message, ...}``. ``body`` sends raw text instead of ``{"data": data}``
    (JSON with NaN/Infinity, as JavaScript writes them, is what ``json.dumps`` gives)."""
    content = body if body is not None else json.dumps({"data": data})
    posted = httpx.post(f"{url}gradio_api/call/{api}", content=content, timeout=timeout,
                        headers={"content-type": "application/json"})
    posted.raise_for_status()
    stream = httpx.get(f"{url}gradio_api/call/{api}/{posted.json()['event_id']}", timeout=timeout).text
    lines = stream.strip().splitlines()
    return lines[-2].removeprefix("event: "), json.loads(lines[-1].removeprefix("data: "))


def with_value(index: int, value, data: list = GOOD_GENERATE) -> list:
    """``data`` with position ``index`` replaced."""
    data = list(data)
    data[index] = value
    return data
