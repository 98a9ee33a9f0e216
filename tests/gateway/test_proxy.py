"""The round-robin proxy of the native production topology."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from gateway.proxy import RoundRobinProxy
from tests.conftest import free_port


def replica(name: str) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            body = name.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def proxy() -> Iterator[tuple[str, list[ThreadingHTTPServer]]]:
    servers = [replica("a"), replica("b")]
    port = free_port()
    proxy = RoundRobinProxy(("127.0.0.1", port), [("127.0.0.1", s.server_address[1]) for s in servers])
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(proxy.start(), loop).result(10)
    yield f"http://127.0.0.1:{port}", servers
    asyncio.run_coroutine_threadsafe(proxy.close(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    for server in servers:
        server.server_close()


def fresh_get(url: str) -> httpx.Response:
    with httpx.Client(timeout=5) as client:  # a new connection per request
        return client.get(url)


def test_connections_alternate_and_a_dead_replica_is_skipped(proxy: tuple[str, list[ThreadingHTTPServer]]) -> None:
    url, (a, b) = proxy
    assert sorted(fresh_get(url).text for _ in range(4)) == ["a", "a", "b", "b"]
    a.shutdown()
    a.server_close()
    assert {fresh_get(url).text for _ in range(4)} == {"b"}
    b.shutdown()
    b.server_close()
    assert fresh_get(url).status_code == 503
