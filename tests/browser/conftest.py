"""Browser-test fixtures: Debian's chromium through Python playwright, and small Gradio apps
launched in-process on a free port.

Never ``playwright install``: the browser is ``/usr/bin/chromium`` (apt). Tests skip cleanly
when it or playwright is missing. Screenshots go to ``tests/browser/screenshots/`` (git-ignored)
or ``$STUDIO_SCREENSHOTS``.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.helpers.launch import free_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SCREENSHOTS = Path(__file__).with_name("screenshots")


@contextmanager
def launched(demo, **launch_kwargs):
    """Launch Gradio ``demo`` in this process on a free port; yields its URL, closes after."""
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                **launch_kwargs)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


# Module scope on purpose: playwright's sync API allows one instance per thread at a time, and
# a test module may still start its own (test_studio.py did); a session-wide browser would clash.
@pytest.fixture(scope="module")
def chromium():
    """A headless Debian chromium (playwright ``Browser``)."""
    if os.environ.get("CI") and not Path(CHROMIUM).exists():
        pytest.fail("CI must run the browser tests: scripts/test.sh installs Debian's chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def browser(chromium):
    """Alias of ``chromium``."""
    return chromium


@pytest.fixture(scope="module")
def shots():
    """The screenshot folder (created)."""
    folder = Path(os.environ.get("STUDIO_SCREENSHOTS") or SCREENSHOTS)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def launch_app():
    """``launch_app(demo, **launch_kwargs) -> url``: serve a Blocks for the rest of the module."""
    stack = []

    def launch(demo, **kwargs):
        ctx = launched(demo, **kwargs)
        url = ctx.__enter__()
        stack.append(ctx)
        return url

    yield launch
    for ctx in reversed(stack):
        ctx.__exit__(None, None, None)


@pytest.fixture(scope="module")
def editor_url(launch_app):
    """URL of the editor-only demo page (``ui.pose_editor_demo``)."""
    from ui.pose_editor_demo import build_demo

    return launch_app(build_demo())
