"""The launched studio against hostile load and oversized bodies (issue 15, items 6, 7 and 9)."""

from __future__ import annotations

import asyncio

import httpx

from ui.config import Limits
from ui.request_limits import parse_size


def test_retrieval_has_its_own_slots_and_the_queue_holds_a_burst(studio):
    demo, _ = studio
    limits = Limits.load()
    retrieve = [fn for fn in demo.fns.values() if fn.concurrency_id == "retrieve"]
    gpu = [fn for fn in demo.fns.values() if fn.concurrency_id == "gpu"]
    assert retrieve and all(fn.concurrency_limit == limits.retrieve_concurrency > 1 for fn in retrieve)
    assert gpu and all(fn.concurrency_limit == 1 for fn in gpu)  # GPU events stay one at a time
    assert demo._queue.max_size == limits.queue_max_size >= 64


def test_fifty_concurrent_retrieves_all_answer(studio_url):
    async def burst():
        async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=120)) as http:
            async def call(i: int):
                posted = await http.post(f"{studio_url}gradio_api/call/retrieve",
                                         json={"data": [f"two friends shaking hands {i}", 0]})
                posted.raise_for_status()
                text = (await http.get(f"{studio_url}gradio_api/call/retrieve/{posted.json()['event_id']}")).text
                return text
            return await asyncio.gather(*(call(i) for i in range(50)), return_exceptions=True)

    answers = asyncio.run(burst())
    assert all(isinstance(a, str) and "event: complete" in a for a in answers), [a for a in answers
                                                                                 if "complete" not in str(a)][:2]


def test_an_oversized_request_body_is_refused_with_a_sentence(studio_url):
    cap = parse_size(Limits.load().max_request_size)
    assert cap >= 4 * parse_size(Limits.load().max_file_size)  # room for a full set of subject uploads

    def chunks():  # streamed without a Content-Length: counted as it arrives
        block = b"x" * (1 << 20)
        for _ in range(cap // len(block) + 2):
            yield block

    for content in (b"{" + b" " * (cap + 10) + b"}", chunks()):
        answer = httpx.post(f"{studio_url}gradio_api/call/retrieve", content=content, timeout=120,
                            headers={"content-type": "application/json"})
        assert answer.status_code == 413
        assert "larger than the studio accepts" in answer.json()["error"]
    ok = httpx.post(f"{studio_url}gradio_api/call/retrieve", json={"data": ["a man waving", 0]}, timeout=60)
    assert ok.status_code == 200  # the server is unharmed


def test_sizes_parse_like_gradios_max_file_size():
    assert parse_size("12mb") == 12_000_000 and parse_size("50MB") == 50_000_000 and parse_size("1.5kb") == 1500
