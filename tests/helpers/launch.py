"""Launch the studio in-process for tests: tiny engine, small real retriever, free port.

Shared by ``tests/ui`` (gradio_client) and ``tests/browser`` (Chromium), through the
``studio`` fixture of ``tests/conftest.py``; ``ui`` (Gradio) is imported only on launch.
"""

from __future__ import annotations

import socket
from contextlib import contextmanager


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running_studio(engine, retriever, detector=None, config=None):
    """Yield ``(demo, url)`` of a launched studio (`config`: a ``ui.StudioConfig``); closes the server afterwards."""
    from ui import StudioConfig, build_studio, launch_options

    config = config or StudioConfig()
    demo = build_studio(engine=engine, retriever=retriever, config=config, detector=detector)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True,
                quiet=True, **launch_options(config.limits.max_file_size))
    try:
        yield demo, f"http://127.0.0.1:{port}/"
    finally:
        demo.close()
