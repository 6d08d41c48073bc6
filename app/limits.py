"""Upload size limit, enforced while the body streams in (never after reading it all)."""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.responses import json_response


class UploadTooLarge(Exception):
    """Raised into the app's body reading once the limit is passed; it stops the parser."""


class UploadLimitMiddleware:
    """Refuses request bodies over `max_bytes` on the paths it `applies` to with a JSON 413.

    A declared Content-Length over the limit is refused before any of the body is read; a
    chunked body is counted as it arrives and refused the moment it passes the limit. Inner
    layers may turn the raised error into a response of their own (FastAPI makes it a 400),
    so once the limit is passed this middleware answers the 413 itself and drops theirs.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, applies: Callable[[str], bool]) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.applies = applies

    async def refuse(self, scope: Scope, send: Send) -> None:
        await json_response(send, scope["path"], 413, f"the upload is larger than the limit of {self.max_bytes} bytes")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.applies(scope["path"]):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self.refuse(scope, send)
            return
        received, exceeded, refused = 0, False, False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    raise UploadTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal refused
            if not exceeded:
                await send(message)
            elif not refused:
                refused = True
                await self.refuse(scope, send)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not exceeded:
                raise
        if exceeded and not refused:
            await self.refuse(scope, send)
