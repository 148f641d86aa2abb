"""50 users retrieving at once against a real launched studio (issue 15, target: p50 <= 1.5 s, 0 errors).

    python benchmarks/retrieval_load.py [--index DIR] [--users 50] [--rounds 3] [--torch-threads N]

Starts ``python app.py --engine none --index DIR`` on a free port (without --index it first
builds a small index from the library into a temporary folder). In each round every user's
``/retrieve`` call is released at the same instant (asyncio + httpx through Gradio's REST API,
so the load generator stays light on a 2-core machine) and timed end to end. Prompts differ
per user (no cache hits across users). Prints per-round and overall p50/p90/max latency, the
error count, and one JSON line with the totals (with the load average before and after). Run
it on a quiet machine: other processes on the same cores inflate every figure, and torch's
intra-op threads most of all. Measured on this 2-core machine at load average ~11, embedding one
query took 480-670 ms with torch's default 2 threads and 43-70 ms with 1 (a batch of 50: 1.7-1.8 s
against 0.33-0.40 s), so ``--torch-threads 1`` (``OMP_NUM_THREADS=1`` for the studio) is worth
comparing with the default.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
PROMPTS = ["two friends shaking hands", "a man waving hello", "a woman sitting on a chair reading",
           "three friends posing for a group photo", "a couple hugging", "a child jumping for joy",
           "someone doing a handstand", "a person lying on the floor", "two people dancing together",
           "a runner sprinting"]
ADJECTIVES = ["", "happy ", "tall ", "young ", "old ", "smiling "]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def prompt_for(user: int, round_: int) -> str:
    base = PROMPTS[user % len(PROMPTS)]
    return f"{ADJECTIVES[(user // len(PROMPTS) + round_) % len(ADJECTIVES)]}{base}"


async def one_call(http, url: str, prompt: str) -> float:
    """One /retrieve through Gradio's REST API (POST the call, read its event stream to the end)."""
    tick = time.perf_counter()
    posted = await http.post(f"{url}gradio_api/call/retrieve", json={"data": [prompt, 0]})
    posted.raise_for_status()
    event_id = posted.json()["event_id"]
    event = None
    async with http.stream("GET", f"{url}gradio_api/call/retrieve/{event_id}") as stream:
        async for line in stream.aiter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event in ("complete", "error"):
                if event == "error":
                    raise RuntimeError(f"error event: {line[:200]}")
                answer = json.loads(line[5:])[0]
                assert isinstance(answer, dict) and "matched" in answer
                return time.perf_counter() - tick
    raise RuntimeError(f"stream ended after event {event!r}")


async def burst_rounds(url: str, users: int, rounds: int) -> tuple[list[float], list[str]]:
    """`rounds` bursts of `users` calls released together; latencies of the good ones, and the errors."""
    import httpx

    everything, errors = [], []
    limits = httpx.Limits(max_connections=users * 2, max_keepalive_connections=users * 2)
    async with httpx.AsyncClient(timeout=120, limits=limits) as http:
        await one_call(http, url, "warm up: a man waving")
        for round_ in range(rounds):
            results = await asyncio.gather(*(one_call(http, url, prompt_for(i, round_)) for i in range(users)),
                                           return_exceptions=True)
            latencies = sorted(r for r in results if isinstance(r, float))
            errors += [repr(r)[:200] for r in results if not isinstance(r, float)]
            everything += latencies
            if latencies:
                print(f"round {round_ + 1}: {len(latencies)} ok, p50 {statistics.median(latencies):.3f} s, "
                      f"p90 {latencies[int(0.9 * (len(latencies) - 1))]:.3f} s, max {latencies[-1]:.3f} s",
                      file=sys.stderr)
    return everything, errors


def build_small_index(out: Path) -> None:
    from pose_db.library.pool import action_ids

    actions = ",".join(action_ids(None, None)[:24])
    subprocess.run([sys.executable, "-m", "pose_db.build", "--out", str(out), "--actions", actions,
                    "--variations", "8", "--quiet"], cwd=REPO, check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, default=None, help="a built pose index (default: build a small one)")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--torch-threads", type=int, default=None,
                        help="intra-op threads of the studio's torch (OMP_NUM_THREADS); default: torch's own")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    from gradio_client import Client

    with tempfile.TemporaryDirectory(prefix="astra-load-") as tmp:
        index = args.index
        if index is None:
            index = Path(tmp) / "index"
            print("building a small index ...", file=sys.stderr)
            build_small_index(index)
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("ASTRA_")} | {"GRADIO_ANALYTICS_ENABLED": "False"}
        if args.torch_threads:
            env["OMP_NUM_THREADS"] = str(args.torch_threads)
        log = open(Path(tmp) / "studio.log", "wb")
        studio = subprocess.Popen([sys.executable, "app.py", "--engine", "none", "--index", str(index), "--host",
                                   "127.0.0.1", "--port", str(port)], cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                  env=env)
        try:
            url = f"http://127.0.0.1:{port}/"
            deadline = time.monotonic() + 300
            while True:
                if studio.poll() is not None:
                    raise SystemExit((Path(tmp) / "studio.log").read_text()[-3000:])
                try:
                    Client(url, verbose=False)
                    break
                except Exception:  # noqa: BLE001 - not up yet
                    if time.monotonic() > deadline:
                        raise SystemExit("the studio never came up") from None
                    time.sleep(1.0)
            client = Client(url, verbose=False)
            single = []
            for i in range(5):
                tick = time.perf_counter()
                client.predict(f"a person waving {i}", 0, api_name="/retrieve")
                single.append(time.perf_counter() - tick)
            print(f"one call alone (gradio_client): p50 {statistics.median(single):.3f} s", file=sys.stderr)
            everything, errors = asyncio.run(burst_rounds(url, args.users, args.rounds))
            everything.sort()
            summary = {"users": args.users, "rounds": args.rounds, "calls": len(everything), "errors": len(errors),
                       "p50_s": round(statistics.median(everything), 3) if everything else None,
                       "p90_s": round(everything[int(0.9 * (len(everything) - 1))], 3) if everything else None,
                       "max_s": round(everything[-1], 3) if everything else None,
                       "single_p50_s": round(statistics.median(single), 3), "cpus": os.cpu_count(),
                       "torch_threads": args.torch_threads, "load_before": round(load_before, 2),
                       "load_after": round(os.getloadavg()[0], 2)}
            if errors:
                print("errors:", errors[:5], file=sys.stderr)
            print(json.dumps(summary))
            return 0 if not errors else 1
        finally:
            studio.terminate()
            studio.wait(30)
            log.close()


if __name__ == "__main__":
    raise SystemExit(main())
