"""Ports for throw-away stacks: never in the range the kernel gives outgoing connections."""

from __future__ import annotations

import socket

from gateway.stack import _ephemeral_low, free_port


def test_ports_are_distinct_bindable_and_below_the_outgoing_connection_range() -> None:
    ports = [free_port() for _ in range(40)]
    assert len(set(ports)) == len(ports)
    assert all(1024 <= port < _ephemeral_low() for port in ports)
    for port in ports[:5]:
        with socket.socket() as server:
            server.bind(("127.0.0.1", port))
