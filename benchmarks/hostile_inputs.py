"""Re-run issue 15's attack on a launched studio and the CLIs, and count the verdicts.

    python benchmarks/hostile_inputs.py [--json OUT] [--only ITEMS] [--keep]

Builds a small index with ``python -m pose_db.build``, starts ``python app.py --engine tiny
--index I`` on a free port, and attacks both the way a hostile user would, item by item of the
issue (1-10): a rebuild under the live studio, damaged copies of the index, ``kill -9`` of a
build, queries on missing indexes, read-only, full and /proc outputs, 50 concurrent retrieves, a
client dropped mid-generation, every bad value of items 8-9 over raw HTTP (and the page's own
Restore event), oversized bodies, and the render CLI's data-loss cases. Each case gets one
verdict by these criteria:

    handled  refused with the app's own sentence (a gr.Error with a title, or a CLI message on
             stderr with exit 2), or answered right, within its time limit, nothing else changed
    crashed  a traceback, a raw Python / Gradio / chromadb message, an HTTP 5xx, a process
             killed by a signal, or an answer whose message is not the app's sentence
    hung     no answer within the case's limit, or processes left running after their parent
    wrong    an answer that should have been a refusal (or a refusal that should have been an
             answer), a sentence about something else, a wrong skeleton, a value silently changed
    lost     a file that should stay untouched was changed, overwritten or created
    skipped  the case cannot run here (the reason is printed), e.g. mounting a tmpfs needs root

Prints one line per case and the totals; ``--json OUT`` also writes every case. Takes a few
minutes on 2 cores (each CLI run imports its models).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import io
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.helpers.gradio_http import (  # noqa: E402 - after the path
    BAD_INPUTS,
    GOOD_GENERATE,
    call,
    fn_index,
    is_app_sentence,
    is_sentence,
    page_event,
    page_generate,
    start_and_drop,
)

VERDICTS = ("handled", "crashed", "hung", "wrong", "lost", "skipped")
HANDSHAKE = "two friends shaking hands"
FIRST_ACTIONS, REBUILT_ACTIONS = "handshake,wave_hello", "handshake,wave_hello,hug"


@dataclass
class Case:
    item: int
    name: str
    verdict: str
    detail: str
    seconds: float


class Attack:
    """Runs cases and keeps their verdicts; a check returns (verdict, detail)."""

    def __init__(self, only: set[int] | None) -> None:
        self.cases: list[Case] = []
        self.only = only

    def wants(self, item: int) -> bool:
        return self.only is None or item in self.only

    def case(self, item: int, name: str, check, *args, **kwargs) -> None:
        if not self.wants(item):
            return
        tick = time.perf_counter()
        try:
            verdict, detail = check(*args, **kwargs)
        except (subprocess.TimeoutExpired, TimeoutError) as error:
            verdict, detail = "hung", f"no answer in time ({error})"
        except Exception as error:  # noqa: BLE001 - an unexpected failure is a finding
            import httpx

            hung = isinstance(error, httpx.TimeoutException)
            verdict, detail = ("hung" if hung else "crashed"), f"{type(error).__name__}: {str(error)[:300]}"
        assert verdict in VERDICTS, verdict
        self.cases.append(Case(item, name, verdict, " ".join(str(detail).split())[:300],
                               round(time.perf_counter() - tick, 2)))
        print(f"  [{item:>2}] {verdict:<8} {name}: {self.cases[-1].detail[:150]}", flush=True)

    def totals(self) -> dict:
        counts = Counter(c.verdict for c in self.cases)
        return {v: counts.get(v, 0) for v in VERDICTS} | {"cases": len(self.cases)}


# ---- processes -------------------------------------------------------------------------------

def clean_env(**extra: str) -> dict:
    return {k: v for k, v in os.environ.items() if not k.startswith("ASTRA_")} | {
        "GRADIO_ANALYTICS_ENABLED": "False"} | extra


def cli(*args: str, timeout: float = 180) -> subprocess.CompletedProcess | None:
    """A ``python -m ...`` run; ``None`` when it did not end within ``timeout`` (killed)."""
    try:
        return subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True,
                              timeout=timeout, env=clean_env(), stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return None


def refused(proc: subprocess.CompletedProcess | None, *words: str) -> tuple[str, str]:
    """The verdict of a CLI run that must refuse with a sentence containing ``words``."""
    if proc is None:
        return "hung", "no answer in time"
    err = proc.stderr.strip()
    last = err.splitlines()[-1] if err else ""
    if proc.returncode < 0:
        return "crashed", f"killed by signal {-proc.returncode}"
    if "Traceback" in err:
        return "crashed", f"traceback: {last}"
    if proc.returncode == 0:
        return "wrong", f"exit 0, accepted: {proc.stdout[:120]!r}"
    if all(w in err for w in words):
        return "handled", err.splitlines()[0]
    return "crashed", f"exit {proc.returncode} without the expected sentence: {err[:200]}"


def files_of(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def launched_studio(index: Path, log: Path):
    """``python app.py --engine tiny --index INDEX`` on a free port; yields its URL."""
    import httpx

    port = free_port()
    with open(log, "wb") as out:
        studio = subprocess.Popen([sys.executable, "app.py", "--engine", "tiny", "--index", str(index),
                                   "--host", "127.0.0.1", "--port", str(port)], cwd=REPO, stdout=out,
                                  stderr=subprocess.STDOUT, env=clean_env())
        url = f"http://127.0.0.1:{port}/"
        try:
            deadline = time.monotonic() + 400
            while True:
                if studio.poll() is not None:
                    raise RuntimeError(f"the studio exited: {log.read_text()[-2000:]}")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{url}config", timeout=5).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the studio never came up: {log.read_text()[-2000:]}")
                time.sleep(1.0)
            yield url, studio
        finally:
            studio.terminate()
            try:
                studio.wait(30)
            except subprocess.TimeoutExpired:
                studio.kill()


@contextlib.contextmanager
def tmpfs(path: Path, options: str):
    """A real tmpfs at ``path``; yields None where mounting is not allowed."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    if mounted.returncode != 0:
        yield None
        return
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


# ---- HTTP ------------------------------------------------------------------------------------

def http_refused(url: str, api: str, data: list, words: str | None) -> tuple[str, str]:
    event, payload = call(url, api, data)
    if words is None:
        return ("handled", "answered (harmless value)") if event == "complete" else (
            "wrong", f"refused a harmless value: {str(payload)[:160]}")
    if event == "complete":
        return "wrong", f"accepted: {str(payload)[:160]}"
    if is_app_sentence(payload):
        return ("handled" if words in payload["error"] else "wrong"), payload["error"]
    return "crashed", f"not the app's sentence: {str(payload)[:200]}"


def upload(url: str, name: str, data: bytes) -> dict:
    """A file uploaded to the studio, as the FileData an input takes."""
    import httpx

    answer = httpx.post(f"{url}gradio_api/upload", files={"files": (name, data, "application/octet-stream")},
                        timeout=60)
    answer.raise_for_status()
    return {"path": answer.json()[0], "orig_name": name, "meta": {"_type": "gradio.FileData"}}


def recipe_png(**changes) -> bytes:
    from PIL import Image, PngImagePlugin

    from ui.recipe import RECIPE_KEY

    text = changes.pop("raw", None) or json.dumps(
        dict(prompt="a man waves", seed=7, width=64, height=64, num_inference_steps=2, guidance_scale=3.5,
             binding_strength=1.0, subject_names=[], pose=None, engine="tiny") | changes)
    info = PngImagePlugin.PngInfo()
    info.add_itxt(RECIPE_KEY, text, zip=True)
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


# ---- the items -------------------------------------------------------------------------------

def item_1_rebuild_under_the_studio(url: str, index: Path) -> tuple[str, str]:
    """Ask the live studio for a handshake over and over while the build CLI swaps the index."""
    before_hug = call(url, "retrieve", ["a couple hugging each other", 2])[1][0]
    answers, errors, stop = [], [], threading.Event()

    def ask() -> None:
        while not stop.is_set():
            try:
                event, payload = call(url, "retrieve", [HANDSHAKE, 0])
                (answers if event == "complete" else errors).append(payload)
            except Exception as error:  # noqa: BLE001 - a finding
                errors.append(repr(error))

    asker = threading.Thread(target=ask)
    asker.start()
    try:
        built = cli("pose_db.build", "--out", str(index), "--quiet", "--actions", REBUILT_ACTIONS,
                    "--variations", "3", "--workers", "0", timeout=400)
        time.sleep(1.5)
    finally:
        stop.set()
        asker.join(120)
    if built is None or built.returncode != 0:
        return "crashed", f"the rebuild failed: {(built.stderr if built else 'timeout')[-200:]}"
    if errors:
        return "crashed", f"{len(errors)} errors during the rebuild, e.g. {str(errors[0])[:160]}"
    bad = [a for a in answers if not (a[0]["matched"] and a[0]["results"][0]["action"] == "handshake")]
    if bad or len(answers) < 3:
        return "wrong", f"{len(bad)} of {len(answers)} answers were not a handshake"
    after_hug = call(url, "retrieve", ["a couple hugging each other", 2])[1][0]
    followed = after_hug["matched"] and after_hug["results"][0]["action"] == "hug"
    if not followed or (before_hug["matched"] and before_hug["results"][0]["action"] == "hug"):
        return "wrong", "the studio did not follow the new generation"
    live = (index / "CURRENT").read_text().strip()
    if sorted(p.name for p in index.iterdir()) != ["CURRENT", live]:
        return "wrong", f"old generations left: {sorted(p.name for p in index.iterdir())}"
    files = files_of(index)
    call(url, "retrieve", ["a man waving hello", 0])
    if files_of(index) != files:
        return "lost", "the studio wrote into the index it only reads"
    return "handled", f"{len(answers)} answers during the rebuild, all handshakes; then followed it (hug)"


def item_2_damaged_copy(pristine: Path, work: Path, how: str) -> tuple[str, str]:
    from tests.pose_db.test_index_damage import damaged_copy

    out = damaged_copy(pristine, work / how, how)
    before = files_of(out)
    verdict = refused(cli("pose_db.query", "--index", str(out), HANDSHAKE), "pose index",
                      "python -m pose_db.build --out")
    if files_of(out) != before:
        return "lost", "the damaged index was written to"
    return verdict


def item_3_kill_9_of_a_build(work: Path) -> tuple[str, str]:
    from tests.pose_db.test_build import alive, children

    out = work / "killed-index"
    build = subprocess.Popen([sys.executable, "-m", "pose_db.build", "--out", str(out), "--quiet", "--workers", "2",
                              "--variations", "30"], cwd=REPO, stderr=subprocess.DEVNULL, env=clean_env())
    try:
        deadline, descendants = time.monotonic() + 240, []
        while len(descendants) < 3:  # two generator workers and multiprocessing's resource tracker
            if build.poll() is not None or time.monotonic() > deadline:
                return "skipped", "the build never started its workers"
            time.sleep(0.2)
            descendants = children(build.pid)
        time.sleep(1.0)
        build.send_signal(signal.SIGKILL)
        build.wait(30)
    finally:
        if build.poll() is None:
            build.kill()
    deadline = time.monotonic() + 15
    while [p for p in descendants if alive(p)] and time.monotonic() < deadline:
        time.sleep(0.2)
    left = [p for p in descendants if alive(p)]
    if left:
        return "hung", f"{len(left)} workers outlived their killed build"
    if (out / "CURRENT").exists():
        return "wrong", "the killed build published a generation"
    return "handled", f"all {len(descendants)} children ended with their parent"


def item_4_query_nonexistent(work: Path) -> tuple[str, str]:
    missing = work / "nonexistent" / "idx"
    verdict = refused(cli("pose_db.query", "--index", str(missing), HANDSHAKE), "No pose index at", "pose_db.build")
    if (work / "nonexistent").exists():
        return "lost", "the query created the path"
    return verdict


def item_4_query_writes_nothing(index: Path) -> tuple[str, str]:
    before = files_of(index)
    proc = cli("pose_db.query", "--index", str(index), "--json", HANDSHAKE)
    if proc is None or proc.returncode != 0:
        return refused(proc)
    if files_of(index) != before:
        return "lost", "a plain query rewrote the index"
    best = json.loads(proc.stdout.splitlines()[0])["results"][0]
    return ("handled", f"answered {best['action']} ({best['score']:.2f}), index untouched") \
        if best["action"] == "handshake" else ("wrong", f"answered {best['action']}")


def item_5_build_into(out: str, *words: str) -> tuple[str, str]:
    return refused(cli("pose_db.build", "--out", out, "--variations", "1", "--actions", "handshake"), *words)


def item_5_read_only(work: Path) -> tuple[str, str]:
    with tmpfs(work / "ro", "ro,size=1m") as folder:
        if folder is None:
            return "skipped", "cannot mount a read-only tmpfs here (needs root)"
        return item_5_build_into(str(folder / "index"), "not writable", "Read-only")


def item_5_disk_full(work: Path) -> tuple[str, str]:
    with tmpfs(work / "full", "size=600k") as folder:
        if folder is None:
            return "skipped", "cannot mount a small tmpfs here (needs root)"
        proc = cli("pose_db.build", "--out", str(folder / "index"), "--quiet", "--workers", "0",
                   "--actions", REBUILT_ACTIONS, "--variations", "30", timeout=400)
        verdict = refused(proc, "is full")
        if verdict[0] == "handled" and (folder / "index" / "CURRENT").exists():
            return "wrong", "a build on a full disk published a generation"
        return verdict


def item_6_fifty_retrieves(url: str) -> tuple[str, str]:
    import httpx

    async def burst():
        async with httpx.AsyncClient(timeout=180, limits=httpx.Limits(max_connections=120)) as http:
            async def one(i: int):
                tick = time.perf_counter()
                posted = await http.post(f"{url}gradio_api/call/retrieve",
                                         json={"data": [f"two friends shaking hands {i}", 0]})
                posted.raise_for_status()
                text = (await http.get(f"{url}gradio_api/call/retrieve/{posted.json()['event_id']}")).text
                if "event: complete" not in text:
                    raise RuntimeError(text[-200:])
                return time.perf_counter() - tick
            return await asyncio.gather(*(one(i) for i in range(50)), return_exceptions=True)

    results = asyncio.run(burst())
    errors = [r for r in results if not isinstance(r, float)]
    if errors:
        return "crashed", f"{len(errors)} of 50 failed, e.g. {str(errors[0])[:160]}"
    times = sorted(results)
    return "handled", (f"50 of 50 answered; p50 {statistics.median(times):.2f} s, max {times[-1]:.2f} s "
                       f"(load figures: benchmarks/retrieval_load.py)")


def item_7_disconnect(url: str) -> tuple[str, str]:
    steps, side = 60, 1024
    long = [*GOOD_GENERATE[:4], side, side, steps, *GOOD_GENERATE[7:]]
    reached, step_s = start_and_drop(url, fn_index(url, "generate"), long)
    dropped = time.perf_counter()
    left = (steps - reached) * step_s
    event, _ = call(url, "generate", GOOD_GENERATE)
    waited = time.perf_counter() - dropped
    if event != "complete":
        return "crashed", "the next user's generation failed"
    detail = f"next user waited {waited:.1f} s; the dropped job had {left:.1f} s left"
    return ("handled" if waited < 0.5 * left else "hung"), detail


def item_8_query_batch_binary(work: Path) -> tuple[str, str]:
    binary = work / "photo.jsonl"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00" * 100)
    return refused(cli("pose_db.query", "--batch", str(binary), "--json"), "is not a text file")


def scene_file(work: Path) -> Path:
    from pose_db.scene.model import PoseScene
    from pose_db.scene.openpose_io import write_openpose
    from tests.helpers.poses import standing_person  # a plain standing skeleton

    path = work / "scene.json"
    path.write_text(json.dumps(write_openpose(PoseScene(256, 256, [standing_person(128, 40, 200)]))))
    return path


def item_8_render_missing_folder(work: Path) -> tuple[str, str]:
    target = work / "missing-folder" / "map.png"
    verdict = refused(cli("pose_db.render", str(scene_file(work)), str(target)), "does not exist")
    return ("lost", "created the folder") if target.parent.exists() else verdict


def item_9_restore(url: str, what: str, words: str, **changes) -> tuple[str, str]:
    """The page's Restore (its own event, over the queue) on an edited recipe PNG."""
    ok, output = page_event(url, "restore", {"restore": upload(url, f"{what}.png", recipe_png(**changes))})
    if ok:
        return "wrong", f"restored into the form: {str(output)[:160]}"
    if is_app_sentence(output):
        return ("handled" if words in output["error"] else "wrong"), output["error"]
    return "crashed", f"not the app's sentence: {str(output)[:200]}"


def item_8_page_generate(url: str, value) -> tuple[str, str]:
    """The page's own Generate (a private event, reachable over /queue/join) with a bad number."""
    ok, output = page_event(url, page_generate(url), {"prompt": "a man waves", "width": value, "steps": 1})
    if ok:
        return "wrong", f"generated with width {value!r}"
    # refused by the event's validator before queueing: a bare HTTP 400 whose detail is the sentence
    if is_app_sentence(output) or (isinstance(output, dict) and is_sentence(output.get("error"))):
        return "handled", output["error"]
    return "crashed", f"not the app's sentence: {str(output)[:200]}"


def item_9_read_recipe(url: str, what: str, words: str, **changes) -> tuple[str, str]:
    return http_refused(url, "read_recipe", [upload(url, f"{what}.png", recipe_png(**changes))], words)


def item_9_float_tiff(work: Path) -> tuple[str, str]:
    import numpy as np
    from PIL import Image

    from ui.images import load_image

    path = work / "float32.tiff"
    Image.fromarray(np.linspace(0, 1, 64 * 64, dtype=np.float32).reshape(64, 64)).save(path, format="TIFF")
    grey = np.asarray(load_image(str(path)))[..., 0]
    if grey.max() <= 1:
        return "wrong", "a 0-1 float TIFF decoded black"
    return "handled", f"decoded 0..{grey.max()} (scaled from 0-1)"


def item_9_unbinding(work: Path) -> tuple[str, str]:
    from PIL import Image

    from pose_db.scene.model import Person, PoseScene
    from pose_db.scene.openpose_io import write_openpose
    from ui.config import Limits
    from ui.generation import prepare_request

    picture = work / "mia.png"
    Image.new("RGB", (32, 32), (200, 100, 50)).save(picture)
    pose = write_openpose(PoseScene(256, 256, [Person.from_points({0: (60, 40), 1: (60, 80)}, subject=1)]))
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        request = prepare_request(prompt="Mia waves", subject_images=[str(picture), None], subject_names=["Mia", ""],
                                  pose=pose, width=256, height=256, steps=1, guidance=3.5, seed=1,
                                  binding_strength=1.0, limits=Limits.load())
    told = [str(w.message) for w in said if "without an image" in str(w.message)]
    if request.pose["people"][0].get("subject") is None and not told:
        return "wrong", "unbound silently"
    return "handled", told[0] if told else "kept bound"


def item_9_body_cap(url: str) -> tuple[str, str]:
    import httpx

    from ui.config import Limits
    from ui.request_limits import parse_size

    cap = parse_size(Limits.load().max_request_size)
    answer = httpx.post(f"{url}gradio_api/call/retrieve", content=b"{" + b" " * (cap + 10) + b"}", timeout=120,
                        headers={"content-type": "application/json"})
    if answer.status_code == 413 and "larger than the studio accepts" in answer.text:
        return "handled", f"HTTP 413: {answer.json()['error'][:100]}"
    return "wrong", f"HTTP {answer.status_code} for a body over the {cap / 1e6:.0f} MB cap"


def item_10_render_onto_input(work: Path) -> tuple[str, str]:
    src = scene_file(work)
    before = src.read_bytes()
    verdict = refused(cli("pose_db.render", str(src), str(src)), "")
    return ("lost", "the input was overwritten") if src.read_bytes() != before else verdict


def item_10_render_jpg(work: Path) -> tuple[str, str]:
    out = work / "map.jpg"
    proc = cli("pose_db.render", str(scene_file(work)), str(out))
    if proc is None or proc.returncode != 0:
        return refused(proc)
    head = out.read_bytes()[:3]
    return ("handled", "a JPEG file") if head == b"\xff\xd8\xff" else ("wrong", f"the .jpg holds {head!r}")


def item_10_render_reads(work: Path, special: str) -> tuple[str, str]:
    path = Path(special)
    if special == "fifo":
        path = work / "pose-fifo.json"
        path.unlink(missing_ok=True)
        os.mkfifo(path)  # nobody writes: a blocking read would hang
    return refused(cli("pose_db.render", str(path), str(work / f"m-{path.name}.png"), timeout=60),
                   "not a regular file")


# ---- the run ---------------------------------------------------------------------------------

def run(attack: Attack, work: Path) -> None:
    index = work / "index"
    print("building the studio's index ...", flush=True)
    built = cli("pose_db.build", "--out", str(index), "--quiet", "--actions", FIRST_ACTIONS,
                "--variations", "3", "--workers", "0", timeout=600)
    if built is None or built.returncode != 0:
        raise SystemExit(f"could not build the index: {(built.stderr if built else 'timeout')[-1000:]}")
    pristine = work / "pristine"
    shutil.copytree(index, pristine)

    from tests.pose_db.test_index_damage import DAMAGE

    for how in DAMAGE:
        attack.case(2, f"query a damaged copy ({how})", item_2_damaged_copy, pristine, work, how)
    attack.case(3, "kill -9 of a build with 2 workers", item_3_kill_9_of_a_build, work)
    attack.case(4, "query --index /nonexistent/idx", item_4_query_nonexistent, work)
    attack.case(4, "a plain query writes nothing into its index", item_4_query_writes_nothing, pristine)
    attack.case(5, "build --out on a read-only folder", item_5_read_only, work)
    attack.case(5, "build --out on a full disk", item_5_disk_full, work)
    attack.case(5, "build --out /proc/...", item_5_build_into, "/proc/astra-index", "not writable")
    attack.case(8, "query --batch on a binary file", item_8_query_batch_binary, work)
    attack.case(8, "render into a missing folder", item_8_render_missing_folder, work)
    attack.case(9, "a float32 TIFF subject (0-1)", item_9_float_tiff, work)
    attack.case(9, "a person bound to an empty card", item_9_unbinding, work)
    attack.case(10, "render s.json s.json", item_10_render_onto_input, work)
    attack.case(10, "render into a .jpg name", item_10_render_jpg, work)
    for special in ("/dev/zero", "fifo", str(work)):
        attack.case(10, f"render reads {Path(special).name or special}", item_10_render_reads, work, special)

    if not any(attack.wants(i) for i in (1, 6, 7, 8, 9)):
        return
    print("starting python app.py --engine tiny ...", flush=True)
    with launched_studio(index, work / "studio.log") as (url, _):
        for n, (api, data, words) in enumerate(BAD_INPUTS):
            shown = json.dumps(data, allow_nan=True)[:60]
            attack.case(8, f"/{api} {n}: {shown}", http_refused, url, api, data, words)
        attack.case(8, "the page's own Generate, width 'abc'", item_8_page_generate, url, "abc")
        attack.case(9, "restore width 1e9", item_9_restore, url, "wide", "not restored: Width", width=10**9)
        attack.case(9, "restore steps 1e6", item_9_restore, url, "steps", "not restored: Steps",
                    num_inference_steps=10**6)
        attack.case(8, "restore a recipe seed 2^64", item_9_restore, url, "seed", "impossible seed", seed=2**64)
        attack.case(8, "/read_recipe seed 2^64", item_9_read_recipe, url, "seed", "impossible seed", seed=2**64)
        deep = '{"prompt": "x", "seed": 1, "width": 64, "height": 64, "pose": ' + "[" * 100_000 + "]" * 100_000 + "}"
        attack.case(8, "/read_recipe nested 100k deep", item_9_read_recipe, url, "deep", "nested too deeply", raw=deep)
        attack.case(9, "a request body over the cap", item_9_body_cap, url)
        attack.case(6, "50 concurrent /retrieve", item_6_fifty_retrieves, url)
        attack.case(7, "a client dropped mid-generation", item_7_disconnect, url)
        attack.case(1, "rebuild the index under the live studio", item_1_rebuild_under_the_studio, url, index)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="write every case and the totals here")
    parser.add_argument("--only", help="comma-separated item numbers (1-10) to run")
    parser.add_argument("--keep", action="store_true", help="keep the working folder")
    args = parser.parse_args(argv)
    only = {int(i) for i in args.only.split(",")} if args.only else None
    attack = Attack(only)
    work = Path(tempfile.mkdtemp(prefix="astra-attack-"))
    tick = time.perf_counter()
    try:
        run(attack, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    totals = attack.totals() | {"seconds": round(time.perf_counter() - tick, 1)}
    print("totals: " + ", ".join(f"{k} {v}" for k, v in totals.items()))
    if args.json:
        args.json.write_text(json.dumps({"totals": totals, "cases": [asdict(c) for c in attack.cases]}, indent=1))
    return 0 if not any(totals[v] for v in ("crashed", "hung", "wrong", "lost")) else 1


if __name__ == "__main__":
    raise SystemExit(main())
