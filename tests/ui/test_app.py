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
                         "float16", "--offload", "model", "--openpose", "/w", "--index", "/i"])
    assert (config.engine, config.port, config.host, config.share) == ("tiny", 7870, "0.0.0.0",
                                                                       True)
    assert (config.base, config.adapter, config.dtype, config.offload) == (
        "/models/flux", "me/astra", "float16", "model")


def test_space_variable_supplies_options(monkeypatch):
    monkeypatch.setenv("ASTRA_APP_ARGS", "--engine none --offload sequential")
    monkeypatch.setattr(sys, "argv", ["app.py", "--port", "9000"])
    config = parse_args()
    assert (config.engine, config.offload, config.port) == ("none", "sequential", 9000)


def test_bad_engine_is_refused():
    with pytest.raises(SystemExit):
        parse_args(["--engine", "huge"])


def test_ui_never_imports_torch():
    code = ("import sys, ui.studio, ui.api, ui.events; "
            "print('torch' in sys.modules, 'diffusers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "False"]
