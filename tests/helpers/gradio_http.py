"""Raw HTTP calls to a launched studio, as any script can make them (no gradio_client).

``call`` posts to ``/gradio_api/call/<api_name>`` and reads the answer's event stream;
``GOOD_GENERATE`` is a valid one-step /generate (64 x 64, tiny engine) to vary one value of.
"""

from __future__ import annotations

import json
import uuid

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


def fn_index(url: str, api_name: str) -> int:
    """The queue's function index of the endpoint named ``api_name`` (from the app's /config)."""
    config = httpx.get(f"{url}config", timeout=60).json()
    return next(d["id"] for d in config["dependencies"] if d.get("api_name") == api_name)


def start_and_drop(url: str, index: int, data: list, steps_seen: int = 5) -> tuple[int, float]:
    """Start a generation over Gradio's queue protocol (``/queue/join`` + ``/queue/data``, as the
    browser does), read its progress up to step ``steps_seen``, then drop the connection.

    Returns (the step reached, seconds per step measured from the job's own progress)."""
    import time
    import uuid

    session = uuid.uuid4().hex
    joined = httpx.post(f"{url}gradio_api/queue/join", timeout=60,
                        json={"data": data, "fn_index": index, "session_hash": session,
                              "event_data": None, "trigger_id": None})
    joined.raise_for_status()
    seen: dict[int, float] = {}
    with httpx.Client(timeout=120) as http, \
            http.stream("GET", f"{url}gradio_api/queue/data", params={"session_hash": session}) as stream:
        for line in stream.iter_lines():
            if not line.startswith("data:"):
                continue
            message = json.loads(line.removeprefix("data:"))
            if message.get("msg") == "process_completed":
                raise AssertionError(f"the job ended before it was dropped: {str(message)[:300]}")
            for unit in (message.get("progress_data") or []) if message.get("msg") == "progress" else []:
                if unit.get("index") is not None:
                    seen.setdefault(int(unit["index"]), time.perf_counter())
            if len(seen) >= 2 and max(seen) >= steps_seen:
                break
    # Leaving both blocks closed the job's only connection: its client is gone, mid-job.
    first, last = min(seen), max(seen)
    return last, (seen[last] - seen[first]) / (last - first)


# Hostile values for the named endpoints over raw HTTP (issue 15, item 8): (api, data, words of
# the app's sentence). ``None`` words: the value is harmless and the call completes.
BAD_INPUTS = [
    ("retrieve", ["two people", "two"], "People must be a number, not the text 'two'"),
    ("retrieve", ["two people", float("nan")], "People must be a finite number"),
    ("retrieve", ["two people", float("inf")], "People must be a finite number"),
    ("retrieve", ["two people", 2.5], "People must be a whole number"),
    ("retrieve", [5, 0], "The prompt must be text"),
    ("retrieve", [{"a": 1}, 0], "The prompt must be text"),
    ("generate", with_value(0, {"a": 1}), None),  # a Textbox reads any value as its text
    ("generate", with_value(2, 5), "Subject names must be text"),
    ("generate", with_value(2, {"a": "Mia"}), "Subject names must be text"),
    ("generate", with_value(4, "abc"), "Width must be a number, not the text 'abc'"),
    ("generate", with_value(5, float("nan")), "Height must be a finite number"),
    ("generate", with_value(6, float("inf")), "Steps must be a finite number"),
    ("generate", with_value(7, "NaN"), "Guidance must be a finite number"),
    ("generate", with_value(8, float("nan")), "Seed must be a finite number"),
    ("generate", with_value(8, 2**64), "Seed must be between 0 and 2147483647"),
    ("generate", with_value(9, [1]), "Binding strength must be a number, not a list"),
    ("generate", with_value(10, "abc"), "Controlnet conditioning scale must be a number"),
    ("generate", with_value(7, 10**400), "Guidance must be a finite number"),
    ("generate", with_value(3, "[" * 100_000 + "]" * 100_000), "nested too deeply"),
]


def is_app_sentence(payload) -> bool:
    """Whether an error payload is one of the app's ``gr.Error`` sentences (they carry a title;
    raw exceptions and Gradio's preprocess errors do not)."""
    if not isinstance(payload, dict) or payload.get("title") != "Error":
        return False
    return is_sentence(payload.get("error"))


def is_sentence(message) -> bool:
    """A message of the app's own: one capitalised sentence, no traceback, no Gradio preprocess
    error. (An event validator's refusal reaches a raw client as a bare HTTP 400 detail.)"""
    message = str(message or "")
    return (bool(message) and "Could not preprocess" not in message and "Traceback" not in message
            and message[0].isupper() and message.rstrip().endswith((".", "”")))


def page_event(url: str, name: str, replace: dict, timeout: float = 120) -> tuple[bool, object]:
    """Run one of the page's own (private) events over the queue, as the browser does: every
    input takes its value on a fresh page, except those in ``replace`` (elem_id -> value).
    Returns (success, output)."""
    config = httpx.get(f"{url}config", timeout=60).json()
    dependency = next(d for d in config["dependencies"] if d.get("api_name") == name)
    components = {c["id"]: c for c in config["components"]}
    data = []
    for cid in dependency["inputs"]:
        props = components[cid].get("props", {})
        data.append(replace.get(props.get("elem_id"), props.get("value")))
    session = uuid.uuid4().hex
    joined = httpx.post(f"{url}gradio_api/queue/join", timeout=60,
                        json={"data": data, "fn_index": dependency["id"], "session_hash": session,
                              "event_data": None, "trigger_id": None})
    if joined.status_code != 200:  # refused before queueing (the event's validator)
        body = joined.json() if joined.headers.get("content-type", "").startswith("application/json") else {}
        detail = body.get("detail", body) if isinstance(body, dict) else body
        return False, detail if isinstance(detail, dict) else {"error": str(detail or joined.text)[:300]}
    with httpx.Client(timeout=timeout) as http, \
            http.stream("GET", f"{url}gradio_api/queue/data", params={"session_hash": session}) as stream:
        for line in stream.iter_lines():
            if line.startswith("data:"):
                message = json.loads(line.removeprefix("data:"))
                if message.get("msg") == "process_completed":
                    return bool(message.get("success")), message.get("output")
    raise TimeoutError("the page event never completed")


def page_generate(url: str) -> str:
    """The api_name Gradio gave the page's own Generate event (the API's endpoint is "generate")."""
    config = httpx.get(f"{url}config", timeout=60).json()
    return next(d["api_name"] for d in config["dependencies"] if str(d.get("api_name", "")).startswith("generate_"))
