"""Free TCP ports on 127.0.0.1, for servers that tests and ``keeldb chaos`` start."""

from __future__ import annotations

import socket

HOST = "127.0.0.1"


def free_ports(n: int) -> list[int]:
    """``n`` distinct ports free on 127.0.0.1 right now.

    All sockets stay bound until every port is chosen, so the kernel cannot hand out the
    same port twice within one call (it may, across calls, once a socket is closed).
    """
    socks: list[socket.socket] = []
    try:
        for _ in range(n):
            s = socket.socket()
            socks.append(s)
            s.bind((HOST, 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def free_port() -> int:
    """A port free on 127.0.0.1 right now (another process may take it before you do)."""
    return free_ports(1)[0]
