"""A cap on the size of every HTTP request body the studio accepts (``presets.yaml``'s
``max_request_size``), so no client can make the server read or buffer an unbounded body.

Gradio's ``max_file_size`` checks each uploaded file; this checks the whole request, with or
without a ``Content-Length`` (a chunked body is counted as it arrives and cut off at the cap).
Refusals are HTTP 413 with a sentence that says what to do.
"""

from __future__ import annotations

import json
import re

_UNITS = {"b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3}


def parse_size(text: str) -> int:
    """Bytes of a size such as "50mb" (the units of Gradio's ``max_file_size``)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmg]?b)\s*", str(text).lower())
    if not match:
        raise ValueError(f"{text!r} is not a size like '50mb'")
    return int(float(match.group(1)) * _UNITS[match.group(2)])


class BodySizeLimit:
    """Pure ASGI middleware (works for streaming bodies too)."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = int(max_bytes)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await self._refuse(send)
        seen, too_large, refused = 0, False, False

        async def counted():
            nonlocal seen, too_large
            if too_large:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:  # stop reading: the app sees the client go away
                    too_large = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message):
            nonlocal refused
            if not too_large:
                return await send(message)
            if message["type"] == "http.response.start" and not refused:
                refused = True
                await self._refuse(send)
            # the app's own answer to a body it never fully got is dropped

        try:
            await self.app(scope, counted, guarded_send)
        except Exception:
            if not too_large:
                raise
        if too_large and not refused:
            await self._refuse(send)

    async def _refuse(self, send) -> None:
        mb = self.max_bytes / 1e6
        body = json.dumps({"error": f"The request is larger than the studio accepts ({mb:.0f} MB). Send "
                                    f"smaller files (each at most the upload limit) or fewer at once."}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def middleware(max_request_size: str) -> list:
    """``app_kwargs["middleware"]`` for ``Blocks.launch``."""
    from starlette.middleware import Middleware

    return [Middleware(BodySizeLimit, max_bytes=parse_size(max_request_size))]
