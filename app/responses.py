"""JSON error answers sent straight from ASGI middleware (before FastAPI's routing)."""

from __future__ import annotations

import json

from starlette.types import Send

OPEN_INFERENCE_PREFIX = "/v2"


def error_body(path: str, message: str) -> dict[str, str]:
    """An error as its API spells it: `{"error": ...}` under the Open Inference Protocol's /v2,
    `{"detail": ...}` (FastAPI's way) everywhere else."""
    under_v2 = path == OPEN_INFERENCE_PREFIX or path.startswith(OPEN_INFERENCE_PREFIX + "/")
    return {"error": message} if under_v2 else {"detail": message}


async def json_response(
    send: Send, path: str, status: int, message: str, headers: dict[str, str] | None = None
) -> None:
    """A complete JSON error response for a request on `path`."""
    body = json.dumps(error_body(path, message)).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
