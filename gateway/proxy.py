"""A small TCP round-robin proxy: the load balancer of the native production topology.

``make run-prod`` puts one in front of the gateway replicas (the public port: HTTP and WebSockets pass
through untouched) and one in front of the Rasa replicas (the gateway's Rasa address). Each new
connection goes to the next upstream; an upstream that refuses the connection is skipped, so a killed
replica stops receiving traffic at once. In docker-compose the platform's load balancer plays this part.

    python -m gateway.proxy --listen 127.0.0.1:8000 --upstream 127.0.0.1:8001 --upstream 127.0.0.1:8002
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import signal
import sys

logger = logging.getLogger(__name__)


def _address(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected host:port, got {value!r}")
    return host, int(port)


class RoundRobinProxy:
    """Forwards each accepted connection to the next reachable upstream.

    Args:
        listen: Address to accept connections on.
        upstreams: Addresses of the replicas.
        connect_timeout_s: How long one upstream may take to accept before the next one is tried.
    """

    def __init__(self, listen: tuple[str, int], upstreams: list[tuple[str, int]], connect_timeout_s: float = 2.0) -> None:
        if not upstreams:
            raise ValueError("at least one upstream")
        self.listen = listen
        self.upstreams = upstreams
        self.connect_timeout_s = connect_timeout_s
        self._next = itertools.cycle(range(len(upstreams)))
        self.connections = [0] * len(upstreams)
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        """Start accepting."""
        self._server = await asyncio.start_server(self._handle, *self.listen, reuse_address=True)

    async def serve_forever(self) -> None:
        """Start and serve until cancelled."""
        await self.start()
        assert self._server is not None
        async with self._server:
            await self._server.serve_forever()

    async def close(self) -> None:
        """Stop accepting (open connections finish on their own)."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _connect(self) -> tuple[int, asyncio.StreamReader, asyncio.StreamWriter] | None:
        for _ in range(len(self.upstreams)):
            index = next(self._next)
            host, port = self.upstreams[index]
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), self.connect_timeout_s)
                return index, reader, writer
            except (OSError, asyncio.TimeoutError):
                logger.warning("upstream %s:%s is not accepting; trying the next one", host, port)
        return None

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        upstream = await self._connect()
        if upstream is None:
            # No replica at all: a plain 503 is more useful to an HTTP client than a reset.
            client_writer.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            await _close(client_writer)
            return
        index, reader, writer = upstream
        self.connections[index] += 1
        await asyncio.gather(_pipe(client_reader, writer), _pipe(reader, client_writer))


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        await _close(writer)


async def _close(writer: asyncio.StreamWriter) -> None:
    try:
        writer.close()
        await writer.wait_closed()
    except (ConnectionError, OSError):
        pass


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="python -m gateway.proxy", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--listen", type=_address, required=True)
    parser.add_argument("--upstream", type=_address, action="append", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s proxy: %(message)s")
    proxy = RoundRobinProxy(args.listen, args.upstream)

    async def run() -> None:
        task = asyncio.create_task(proxy.serve_forever())
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        try:
            await task
        except asyncio.CancelledError:
            pass

    try:  # uvloop (installed with uvicorn[standard]) copies bytes with less CPU per chunk than asyncio's loop
        import uvloop

        uvloop.run(run())
    except ImportError:
        asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
