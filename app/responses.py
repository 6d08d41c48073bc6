"""JSON error answers sent straight from ASGI middleware (before FastAPI's routing)."""

from __future__ import annotations

import json

from starlette.types import Send


async def json_response(send: Send, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
    """A complete `{"detail": ...}` response, as the app's own errors look."""
    body = json.dumps({"detail": detail}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
