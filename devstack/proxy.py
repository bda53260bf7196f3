"""A TCP proxy the tests can cut and restore, to make one service unreachable on purpose, and
that can delay what it forwards, to put a service at a distance (the benchmarks' ``--rtt-ms``)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from concurrent.futures import Future
from typing import Any

from devstack.localbase import free_port

#: Chunks read but not yet written, per direction of a delayed connection: past this, reading
#: waits (backpressure, like a full TCP window).
DELAYED_CHUNKS = 256


class TcpProxy:
    """Forwards 127.0.0.1:<port> to 127.0.0.1:<target>, in its own thread and event loop.

    With ``delay_seconds``, every chunk is written that long after it was read, in each
    direction (a round trip pays twice the delay), in order; reading goes on meanwhile, so the
    delay is a latency, not a limit on throughput."""

    def __init__(self, target_port: int, delay_seconds: float = 0.0) -> None:
        self.target_port = target_port
        self.delay_seconds = delay_seconds
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._streams: set[asyncio.StreamWriter] = set()
        self._connections: set[asyncio.Task[None]] = set()
        self._thread.start()

    def _call(self, coro: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(10)

    def start(self) -> TcpProxy:
        self._call(self._listen())
        return self

    def cut(self) -> None:
        """Refuse new connections and drop the open ones."""
        self._call(self._cut())

    def restore(self) -> None:
        self._call(self._listen())

    def close(self) -> None:
        self.cut()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(
            self._handle, "127.0.0.1", self.port, reuse_address=True
        )

    async def _cut(self) -> None:
        if self._server is not None:  # no new connections first
            self._server.close()
        for writer in list(self._streams):
            writer.transport.abort()
        self._streams.clear()
        for connection in list(self._connections):  # chunks still waiting for their delay
            connection.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One connection; a cut cancels it (the cancellation ends here: it is ours)."""
        this = asyncio.current_task()
        assert this is not None
        self._connections.add(this)
        self._streams.add(writer)
        up_writer: asyncio.StreamWriter | None = None
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
            self._streams.add(up_writer)
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            for end in (writer, up_writer):
                if end is not None:
                    end.transport.abort()
                    self._streams.discard(end)
            self._connections.discard(this)

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            if self.delay_seconds > 0:
                await _delayed_copy(src, dst, self.delay_seconds)
            else:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
        dst.transport.abort()


async def _delayed_copy(
    src: asyncio.StreamReader, dst: asyncio.StreamWriter, delay_seconds: float
) -> None:
    """Copy ``src`` to ``dst`` until end of stream, each chunk ``delay_seconds`` after it was
    read. A reader task stamps the chunks into a FIFO queue and this task writes them when due,
    so order is kept and no chunk waits for the delay of another."""
    loop = asyncio.get_running_loop()
    chunks: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(DELAYED_CHUNKS)

    async def read() -> None:
        data = b"-"
        try:
            while data:
                data = await src.read(65536)
                await chunks.put((loop.time() + delay_seconds, data))
        except OSError:  # a reset: like the end of the stream, once the delay has passed
            await chunks.put((loop.time() + delay_seconds, b""))

    reading = asyncio.create_task(read(), name="proxy-delayed-read")
    try:
        while True:
            due, data = await chunks.get()
            if (wait := due - loop.time()) > 0:
                await asyncio.sleep(wait)
            if not data:
                return
            dst.write(data)
            await dst.drain()
    finally:
        reading.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reading
