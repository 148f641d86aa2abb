"""The ``ASTRA_*`` environment variables: read in one module, listed in the README."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pose_db import env

REPO = Path(__file__).resolve().parents[2]
CODE_DIRS = ("pose_db", "engine", "ui", "benchmarks")


def _code_files():
    yield REPO / "app.py"
    for folder in CODE_DIRS:
        yield from (REPO / folder).rglob("*.py")


def test_every_variable_is_read_only_through_env():
    direct = re.compile(r"""(environ\.get\(|environ\[|getenv\()\s*["']ASTRA_""")  # a read, not a child's env
    offenders = [str(path.relative_to(REPO)) for path in _code_files()
                 if path.name != "env.py" and direct.search(path.read_text())]
    assert offenders == []
    used = {name for path in _code_files() for name in re.findall(r'env\.get\("(ASTRA_[A-Z_]+)"\)', path.read_text())}
    assert used <= set(env.VARIABLES)


def test_readme_lists_every_variable():
    readme = (REPO / "README.md").read_text()
    table = {m for m in re.findall(r"^\| `(ASTRA_[A-Z_]+)` \|", readme, re.M)}
    assert table == set(env.VARIABLES)


def test_get_reads_at_call_time_and_treats_empty_as_unset(monkeypatch):
    monkeypatch.setenv("ASTRA_POSE_INDEX", "/somewhere")
    assert env.get("ASTRA_POSE_INDEX") == "/somewhere"
    monkeypatch.setenv("ASTRA_POSE_INDEX", "")
    assert env.get("ASTRA_POSE_INDEX") is None
    with pytest.raises(KeyError, match="not one of"):
        env.get("ASTRA_TYPO")
