"""The entry point's options, and the rule that the UI never imports torch."""

from __future__ import annotations

import subprocess
import sys

import pytest

from app import AppConfig, parse_args


def test_defaults_leave_host_and_port_to_gradio():
    config = parse_args([])
    assert config == AppConfig()
    assert config.host is None and config.port is None  # Spaces set GRADIO_SERVER_NAME/PORT


def test_all_options():
    config = parse_args(["--engine", "tiny", "--port", "7870", "--host", "0.0.0.0", "--share",
                         "--base", "/models/flux", "--adapter", "me/astra", "--dtype",
                         "float16", "--offload", "model", "--openpose", "/w", "--index", "/i",
                         "--normalizer", "/llm", "--specs", "/s"])
    assert (config.engine, config.port, config.host, config.share) == ("tiny", 7870, "0.0.0.0",
                                                                       True)
    assert (config.base, config.adapter, config.dtype, config.offload) == (
        "/models/flux", "me/astra", "float16", "model")
    assert (config.openpose, config.index, config.normalizer, config.specs) == ("/w", "/i", "/llm", "/s")


def test_space_variable_supplies_options(monkeypatch):
    monkeypatch.setenv("ASTRA_APP_ARGS", "--engine none --offload sequential")
    monkeypatch.setattr(sys, "argv", ["app.py", "--port", "9000"])
    config = parse_args()
    assert (config.engine, config.offload, config.port) == ("none", "sequential", 9000)


def test_bad_engine_is_refused():
    with pytest.raises(SystemExit):
        parse_args(["--engine", "huge"])


@pytest.mark.slow
def test_ui_never_imports_torch():
    code = ("import sys, ui.studio, ui.api, ui.events; "
            "print('torch' in sys.modules, 'diffusers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "False"]


@pytest.mark.slow
def test_first_start_builds_the_index_and_serves_the_studio(tmp_path):
    """What a newcomer's `python app.py` does on a machine with no GPU: build the pose index
    (first start), fall back to no engine with the reason, serve retrieval. The build reads a
    small specs folder (two categories of the real library) so the test takes seconds, not minutes."""
    import os
    import shutil
    import socket
    import time

    from gradio_client import Client

    from pose_db.library.specs import ACTIONS_DIR

    specs = tmp_path / "specs"
    specs.mkdir()
    for name in ("_axes.yaml", "_postures.yaml", "interaction.yaml", "standing.yaml"):
        shutil.copy(ACTIONS_DIR / name, specs / name)

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = dict(os.environ, ASTRA_APP_ARGS="", GRADIO_ANALYTICS_ENABLED="False")
    log = open(tmp_path / "app.log", "w")
    app = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--host", "127.0.0.1",
                            "--index", str(tmp_path / "index"), "--specs", str(specs)], stdout=log, stderr=subprocess.STDOUT,
                           env=env)
    try:
        client = None
        deadline = time.monotonic() + 600
        while client is None and time.monotonic() < deadline:
            assert app.poll() is None, (tmp_path / "app.log").read_text()[-3000:]
            try:
                client = Client(f"http://127.0.0.1:{port}/", verbose=False)
            except Exception:
                time.sleep(2)
        assert client is not None, "the studio did not come up in 10 minutes"
        found = client.predict("two friends shaking hands in a park", 0, api_name="/retrieve")
        assert found["matched"] and found["results"][0]["people"] == 2
        assert (tmp_path / "index").is_dir()
        text = (tmp_path / "app.log").read_text()
        assert "No real engine" in text  # auto on a CPU machine: none, and why
    finally:
        app.terminate()
        app.wait(timeout=30)
        log.close()
