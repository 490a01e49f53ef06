"""A TCP proxy in front of a local registry that behaves like one far away: every request waits ``delay``
seconds before it reaches the registry, every new connection waits ``delay`` once (the TCP handshake's round
trip), and at most ``max_connections`` connections are served at once (a registry front's bound per client
host; further connections wait to be accepted).

The proxy relays bytes without parsing HTTP: a request is whatever the client sends after the last answer
(HTTP/1.1 clients do not pipeline), so keep-alive, uploads and chunked bodies pass untouched, and the Host
header still names the proxy (the registry's upload locations point back at it). Anything that speaks HTTP
reaches it: ci-env, skopeo, curl. ``requests`` counts the requests relayed. Runs in a thread of its own
(asyncio); ``stop()`` ends it.

``before(method, path)``, when given, runs (in a worker thread, blocking that request only) before each request is
relayed: a test's concurrent writer that must land at an exact moment, such as right before the first DELETE.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable


class LatencyProxy:
    """Forward 127.0.0.1:``port`` to ``upstream`` (``host:port``) with ``delay`` seconds per request."""

    def __init__(self, upstream: str, *, delay: float = 0.04, max_connections: int = 64,
                 before: Callable[[str, str], None] | None = None) -> None:
        self.upstream = upstream
        self.before = before
        self.delay = delay
        self.max_connections = max_connections
        self.requests = 0
        self.connections = 0
        self.peak_connections = 0
        self._active = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._server: asyncio.AbstractServer | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(10)
        assert self._server is not None, "the latency proxy did not start"
        self.port: int = int(self._server.sockets[0].getsockname()[1])
        self.host: str = f"127.0.0.1:{self.port}"

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._slots = asyncio.Semaphore(self.max_connections)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._serve, "127.0.0.1", 0, backlog=1024))
        self._ready.set()
        self._loop.run_forever()

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        async with self._slots:
            self.connections += 1
            self._active += 1
            self.peak_connections = max(self.peak_connections, self._active)
            try:
                await asyncio.sleep(self.delay)  # the handshake's round trip
                host, _, port = self.upstream.rpartition(":")
                try:
                    upstream_reader, upstream_writer = await asyncio.open_connection(host, int(port))
                except OSError:
                    client_writer.close()
                    return
                turn = {"answered": True}
                await asyncio.gather(
                    self._requests(client_reader, upstream_writer, turn),
                    self._answers(upstream_reader, client_writer, turn),
                )
            finally:
                self._active -= 1
                with contextlib.suppress(Exception):
                    client_writer.close()

    async def _requests(self, source: asyncio.StreamReader, target: asyncio.StreamWriter,
                        turn: dict[str, bool]) -> None:
        """Client to registry: the first bytes after an answer are a new request, and wait ``delay``."""
        try:
            while True:
                data = await source.read(65536)
                if not data:
                    break
                if turn["answered"]:
                    turn["answered"] = False
                    self.requests += 1
                    await asyncio.sleep(self.delay)
                    if self.before is not None:
                        method, _, rest = data.partition(b" ")
                        path = rest.partition(b" ")[0].decode("latin-1")
                        await asyncio.get_running_loop().run_in_executor(
                            None, self.before, method.decode("latin-1"), path)
                target.write(data)
                await target.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                target.close()

    async def _answers(self, source: asyncio.StreamReader, target: asyncio.StreamWriter,
                       turn: dict[str, bool]) -> None:
        """Registry to client, at once; the next bytes from the client are the next request."""
        try:
            while True:
                data = await source.read(65536)
                if not data:
                    break
                turn["answered"] = True
                target.write(data)
                await target.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                target.close()

    def stop(self) -> None:
        """Stop accepting and end the proxy's thread (open connections are dropped)."""
        async def shutdown() -> None:
            assert self._server is not None
            # connections cut at shutdown are expected: no report of their cancelled tasks
            self._loop.set_exception_handler(lambda _loop, _context: None)
            self._server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._loop.stop()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop)
        self._thread.join(10)
        self._loop.close()
