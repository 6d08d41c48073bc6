"""Admission control: a bounded number of classifications at once, a bounded queue, shed load early.

What a classification holds in memory is its upload, the decoded waveform and its windows' inputs,
all bounded by the upload and duration limits. So what bounds the service's memory is how many
requests hold those at once: at most `max_in_flight` are admitted (reading their body, decoding,
inferring), at most `max_queue` wait for a place, and beyond that a request gets 503 with
Retry-After before its body is read. A request that waits longer than `queue_timeout_s` gets 503
too, and is dropped.

Slow and vanishing clients:
- an admitted upload must arrive within `upload_timeout_s`, or it gets 408 and its place is freed;
- while queued, a request reads at most PRE_READ_BYTES of its body, which is how it notices a
  client that goes away (a connection that is not read from cannot tell); past that it waits
  without reading, bounded by the queue timeout;
- once admitted, a client that disconnects cancels its request: its place and buffers are freed,
  and the batching engine skips its windows.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import metrics
from app.responses import json_response

PRE_READ_BYTES = 256 * 1024  # what a queued request may buffer of its body while it waits


class UploadTimeout(Exception):
    """Raised into the app's body reading when the upload deadline passes."""


class AdmissionControl:
    """ASGI middleware bounding the requests on the paths it `applies` to that are served and queued at once.

    Places are handed over first come, first served: a finishing request gives its place to the
    longest waiting one.
    """

    def __init__(
        self,
        app: ASGIApp,
        applies: Callable[[str], bool],
        max_in_flight: int,
        max_queue: int,
        queue_timeout_s: float,
        upload_timeout_s: float,
    ) -> None:
        self.app = app
        self.applies = applies
        self.max_in_flight, self.max_queue = max_in_flight, max_queue
        self.queue_timeout_s, self.upload_timeout_s = queue_timeout_s, upload_timeout_s
        self.in_flight = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def queued(self) -> int:
        return len(self._waiters)

    @property
    def retry_after_s(self) -> int:
        """A hint for clients: about how long the queue ahead takes to drain."""
        return max(1, round(self.queue_timeout_s / 2))

    def _count(self) -> None:
        metrics.IN_SERVICE.set(self.in_flight)
        metrics.QUEUED.set(self.queued)

    def _release(self) -> None:
        """Hand the place to the longest waiting request, or free it."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                self._count()
                return
        self.in_flight -= 1
        self._count()

    async def shed(self, scope: Scope, send: Send, reason: str, detail: str) -> None:
        metrics.SHED.labels(reason).inc()
        await json_response(send, scope["path"], 503, detail, {"retry-after": str(self.retry_after_s)})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.applies(scope["path"]):
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.max_in_flight and self.queued >= self.max_queue:
            await self.shed(scope, send, "queue_full", "the service is at capacity; retry later")
            return
        pre_read: list[Message] = []
        admitted = await self.wait_for_place(receive, pre_read)
        if admitted is None:  # the client went away while queued
            metrics.SHED.labels("client_gone").inc()
            return
        if not admitted:
            await self.shed(
                scope, send, "queue_timeout", f"waited over {self.queue_timeout_s:g} s for a place; retry later"
            )
            return
        try:
            await self.serve(scope, receive, send, pre_read)
        finally:
            self._release()

    async def wait_for_place(self, receive: Receive, pre_read: list[Message]) -> bool | None:
        """True once admitted (holding a place), False after the queue timeout, None if the client left."""
        if self.in_flight < self.max_in_flight and not self._waiters:
            self.in_flight += 1
            self._count()
            return True
        start = time.perf_counter()
        place: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(place)
        self._count()
        reader = asyncio.ensure_future(self._pre_read(receive, pre_read))
        outcome: bool | None = False
        try:
            either: list[asyncio.Future[Any]] = [place, reader]
            await asyncio.wait(either, timeout=self.queue_timeout_s, return_when="FIRST_COMPLETED")
            gone = reader.done() and not reader.cancelled() and reader.result()
            outcome = None if gone else place.done()
            return outcome
        finally:
            if not place.done():
                place.cancel()
                self._waiters.remove(place)
            elif outcome is not True:  # handed a place it will not use (its client left, or it was cancelled)
                self._release()
            self._count()
            metrics.QUEUE_SECONDS.observe(time.perf_counter() - start)
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)

    @staticmethod
    async def _pre_read(receive: Receive, pre_read: list[Message]) -> bool:
        """Buffer the body's first messages while queued; True if the client disconnects meanwhile.

        After a whole body, the next message can only be a disconnect, so listening costs nothing;
        past PRE_READ_BYTES of a larger body it stops reading (cancelled on admission)."""
        size, body_done = 0, False
        while body_done or size < PRE_READ_BYTES:
            message = await receive()
            if message["type"] == "http.disconnect":
                return True
            pre_read.append(message)
            size += len(message.get("body", b""))
            body_done = not message.get("more_body", False)
        await asyncio.Event().wait()
        return False

    async def serve(self, scope: Scope, receive: Receive, send: Send, pre_read: list[Message]) -> None:
        """Run the app with the pre-read body first, an upload deadline, and cancellation on disconnect."""
        deadline = time.monotonic() + self.upload_timeout_s
        body_done = any(not m.get("more_body", False) for m in pre_read)
        held = sum(len(m.get("body", b"")) for m in pre_read)
        metrics.BYTES_HELD.inc(held)
        timed_out = responded = finished = False
        app_has_body = asyncio.Event()  # the app has received the whole body

        async def guarded_receive() -> Message:
            nonlocal body_done, held, timed_out
            if pre_read:
                message = pre_read.pop(0)
            elif body_done:  # after the body, receiving only waits for a disconnect
                return await receive()
            else:
                try:
                    message = await asyncio.wait_for(receive(), max(deadline - time.monotonic(), 0.0))
                except TimeoutError:
                    timed_out = True
                    raise UploadTimeout from None
                chunk = len(message.get("body", b""))
                held += chunk
                metrics.BYTES_HELD.inc(chunk)
                body_done = message["type"] != "http.request" or not message.get("more_body", False)
            if body_done and not pre_read:
                app_has_body.set()
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal responded, finished
            if timed_out:
                return  # the 408 below answers instead of whatever the app made of the error
            responded = True
            finished = message["type"] == "http.response.body" and not message.get("more_body", False)
            await send(message)

        async def cancel_on_disconnect(app: asyncio.Future[None]) -> bool:
            """Once the app has the whole body, the next message can only be a disconnect."""
            await app_has_body.wait()
            message = await receive()
            if message["type"] == "http.disconnect" and not finished and not app.done():
                app.cancel()
                return True
            return False

        app = asyncio.ensure_future(self.app(scope, guarded_receive, guarded_send))
        watcher = asyncio.ensure_future(cancel_on_disconnect(app))
        try:
            await app
        except asyncio.CancelledError:
            if not (watcher.done() and watcher.result()):
                raise  # cancelled from outside, not by the watcher
            metrics.SHED.labels("client_gone").inc()  # nobody is left to answer
        except Exception:
            if not timed_out:
                raise
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
            metrics.BYTES_HELD.dec(held)
        if timed_out and not responded:
            metrics.SHED.labels("upload_timeout").inc()
            late = f"the upload did not arrive within {self.upload_timeout_s:g} s"
            await json_response(send, scope["path"], 408, late)
