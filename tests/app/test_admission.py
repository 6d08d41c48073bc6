"""Admission control on a scripted ASGI app: places, the queue, shedding, timeouts and disconnects."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.types import Message, Receive, Scope, Send

from app import metrics
from app.admission import PRE_READ_BYTES, AdmissionControl

SCOPE: Scope = {"type": "http", "path": "/classify", "method": "POST", "headers": []}


class Client:
    """One request's side of the ASGI conversation: the body it sends and the response it gets."""

    def __init__(self, chunks: list[bytes] | None = None) -> None:
        self.inbox: asyncio.Queue[Message] = asyncio.Queue()
        for i, chunk in enumerate(chunks or [b"x"]):
            self.inbox.put_nowait({"type": "http.request", "body": chunk, "more_body": i < len(chunks or [b"x"]) - 1})
        self.sent: list[Message] = []

    async def receive(self) -> Message:
        return await self.inbox.get()

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    def leave(self) -> None:
        self.inbox.put_nowait({"type": "http.disconnect"})

    @property
    def status(self) -> int | None:
        return next((m["status"] for m in self.sent if m["type"] == "http.response.start"), None)

    def header(self, name: bytes) -> bytes | None:
        start = next(m for m in self.sent if m["type"] == "http.response.start")
        return dict(start["headers"]).get(name)


class App:
    """Reads the whole body, then waits until released; records what it saw."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.bodies: list[bytes] = []
        self.running = 0
        self.cancelled = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.running += 1
        try:
            body, more = b"", True
            while more:
                message = await receive()
                body += message.get("body", b"")
                more = message.get("more_body", False)
            self.bodies.append(body)
            await self.release.wait()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.running -= 1


def control(app: App, **overrides: Any) -> AdmissionControl:
    settings: dict[str, Any] = {"max_in_flight": 1, "max_queue": 1, "queue_timeout_s": 5.0, "upload_timeout_s": 5.0}
    return AdmissionControl(app, applies=lambda path: path == "/classify", **{**settings, **overrides})


def shed_count(reason: str) -> float:
    return metrics.SHED.labels(reason)._value.get()  # type: ignore[no-any-return]


def test_past_the_places_and_the_queue_requests_are_shed_at_once_with_retry_after() -> None:
    async def scenario() -> None:
        app = App()
        admission = control(app, queue_timeout_s=4.0)
        first, second, third = Client(), Client(), Client()
        serving = asyncio.ensure_future(admission(SCOPE, first.receive, first.send))
        queued = asyncio.ensure_future(admission(SCOPE, second.receive, second.send))
        await asyncio.sleep(0.05)
        assert (admission.in_flight, admission.queued) == (1, 1)
        before = shed_count("queue_full")
        await admission(SCOPE, third.receive, third.send)  # answered without waiting
        assert third.status == 503 and third.header(b"retry-after") == b"2"
        assert shed_count("queue_full") == before + 1
        app.release.set()
        await asyncio.gather(serving, queued)
        assert (first.status, second.status) == (200, 200) and app.bodies == [b"x", b"x"]
        assert (admission.in_flight, admission.queued) == (0, 0)

    asyncio.run(scenario())


def test_a_request_that_waits_too_long_gets_503_and_its_work_is_dropped() -> None:
    async def scenario() -> None:
        app = App()
        admission = control(app, queue_timeout_s=0.2)
        first, second = Client(), Client()
        serving = asyncio.ensure_future(admission(SCOPE, first.receive, first.send))
        await asyncio.sleep(0.02)
        before = shed_count("queue_timeout")
        await admission(SCOPE, second.receive, second.send)
        assert second.status == 503 and b"waited over 0.2 s" in second.sent[1]["body"]
        assert shed_count("queue_timeout") == before + 1 and app.bodies == [b"x"]  # never served
        app.release.set()
        await serving
        assert (admission.in_flight, admission.queued) == (0, 0)

    asyncio.run(scenario())


def test_places_are_handed_over_first_come_first_served() -> None:
    async def scenario() -> None:
        app = App()
        admission = control(app, max_queue=3)
        clients = [Client([bytes([65 + i])]) for i in range(4)]
        tasks = []
        for client in clients:
            tasks.append(asyncio.ensure_future(admission(SCOPE, client.receive, client.send)))
            await asyncio.sleep(0.01)
        app.release.set()
        await asyncio.gather(*tasks)
        assert app.bodies == [b"A", b"B", b"C", b"D"]

    asyncio.run(scenario())


def test_a_trickling_upload_gets_408_and_frees_its_place() -> None:
    async def scenario() -> None:
        app = App()
        admission = control(app, upload_timeout_s=0.2)
        trickler = Client([b"first part"])
        trickler.inbox.get_nowait()
        trickler.inbox.put_nowait({"type": "http.request", "body": b"first part", "more_body": True})  # then nothing
        before = shed_count("upload_timeout")
        await asyncio.wait_for(admission(SCOPE, trickler.receive, trickler.send), 2)
        assert trickler.status == 408 and b"within 0.2 s" in trickler.sent[1]["body"]
        assert shed_count("upload_timeout") == before + 1
        assert (admission.in_flight, app.running) == (0, 0)
        assert metrics.BYTES_HELD._value.get() == 0

    asyncio.run(scenario())


def test_a_client_that_leaves_while_queued_frees_its_queue_place() -> None:
    async def scenario() -> None:
        app = App()
        admission = control(app)
        first, leaver = Client(), Client([b"a" * 1000, b"b"])
        serving = asyncio.ensure_future(admission(SCOPE, first.receive, first.send))
        await asyncio.sleep(0.02)
        waiting = asyncio.ensure_future(admission(SCOPE, leaver.receive, leaver.send))
        await asyncio.sleep(0.05)
        assert admission.queued == 1 and leaver.inbox.empty()  # its whole (small) body is pre-read
        leaver.leave()
        await asyncio.wait_for(waiting, 1)
        assert admission.queued == 0 and leaver.sent == []  # nobody to answer
        app.release.set()
        await serving
        assert app.bodies == [b"x"]

    asyncio.run(scenario())


def test_a_client_that_leaves_while_served_cancels_its_work() -> None:
    async def scenario() -> None:
        app = App()
        admission = control(app)
        client = Client()
        serving = asyncio.ensure_future(admission(SCOPE, client.receive, client.send))
        await asyncio.sleep(0.1)
        assert app.running == 1
        client.leave()
        await asyncio.wait_for(serving, 1)
        assert (app.cancelled, app.running, admission.in_flight) == (1, 0, 0)

    asyncio.run(scenario())


def test_a_queued_request_reads_at_most_the_pre_read_of_its_body() -> None:
    async def scenario() -> None:
        app = App()
        admission = control(app)
        first = Client()
        chunks = [b"z" * 65536] * 16  # 1 MiB
        big = Client(chunks)
        serving = asyncio.ensure_future(admission(SCOPE, first.receive, first.send))
        await asyncio.sleep(0.02)
        waiting = asyncio.ensure_future(admission(SCOPE, big.receive, big.send))
        await asyncio.sleep(0.1)
        read = (len(chunks) - big.inbox.qsize()) * 65536
        assert PRE_READ_BYTES <= read <= PRE_READ_BYTES + 65536
        app.release.set()
        await asyncio.gather(serving, waiting)
        assert big.status == 200 and app.bodies[1] == b"".join(chunks)  # the pre-read part is replayed

    asyncio.run(scenario())


def test_a_waiter_cancelled_after_being_handed_a_place_passes_it_on() -> None:
    async def scenario() -> None:
        app = App()
        admission = control(app, max_queue=2)
        first, second, third = Client(), Client(), Client()
        serving = asyncio.ensure_future(admission(SCOPE, first.receive, first.send))
        await asyncio.sleep(0.02)
        cancelled = asyncio.ensure_future(admission(SCOPE, second.receive, second.send))
        kept = asyncio.ensure_future(admission(SCOPE, third.receive, third.send))
        await asyncio.sleep(0.02)
        admission._release()  # first's place goes to second...
        admission.in_flight += 1  # ...(first still holds its own; this stands in for a second place)
        cancelled.cancel()  # ...which is cancelled before it runs
        await asyncio.gather(cancelled, return_exceptions=True)
        app.release.set()
        await asyncio.wait_for(asyncio.gather(serving, kept), 2)
        assert third.status == 200 and admission.in_flight == 0 and admission.queued == 0

    asyncio.run(scenario())
