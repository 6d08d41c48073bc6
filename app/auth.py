"""Optional API keys: with GENRE_API_KEYS set, the inference routes need `Authorization: Bearer <key>`.

Checked before anything else of the request is read, so a request without a key never takes a
place in the queue nor uploads its body. Keys are compared as SHA-256 digests with
hmac.compare_digest, against every key without stopping early, so the time taken says nothing of
which key or how much of one matched. Keys are never logged.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from pathlib import Path

from starlette.types import ASGIApp, Receive, Scope, Send

from app.responses import json_response


def parse_keys(value: str) -> tuple[str, ...]:
    """Keys from GENRE_API_KEYS: a path to a file (one key a line, # comments), or keys separated by commas."""
    path = Path(value)
    if path.is_file():
        lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
        keys = tuple(line for line in lines if line)
    else:
        keys = tuple(k.strip() for k in value.split(",") if k.strip())
    if not keys:
        raise ValueError("GENRE_API_KEYS is set but holds no key")
    return keys


def digest(key: str | bytes) -> bytes:
    return hashlib.sha256(key.encode() if isinstance(key, str) else key).digest()


class ApiKeyAuth:
    """ASGI middleware: 401 with WWW-Authenticate for requests without a valid bearer key on the paths
    it `applies` to."""

    def __init__(self, app: ASGIApp, keys: tuple[str, ...], applies: Callable[[str], bool]) -> None:
        self.app = app
        self.digests = tuple(digest(k) for k in keys)
        self.applies = applies

    def valid(self, authorization: bytes) -> bool:
        scheme, _, token = authorization.partition(b" ")
        offered = digest(token.strip())
        matched = False
        for known in self.digests:  # every key, no early exit
            matched |= hmac.compare_digest(known, offered)
        return matched and scheme.lower() == b"bearer"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.applies(scope["path"]):
            authorization = dict(scope["headers"]).get(b"authorization", b"")
            if not self.valid(authorization):
                detail = "an API key is needed: Authorization: Bearer <key>" if not authorization else "invalid API key"
                await json_response(send, scope["path"], 401, detail, {"www-authenticate": 'Bearer realm="genre"'})
                return
        await self.app(scope, receive, send)
