"""Who may connect to the servers Asterisk calls into (FastAGI, AudioSocket), and how addresses print.

Neither protocol authenticates: the only guard is the peer's address, checked before a byte is read.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Iterable

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
LOOPBACK = ("127.0.0.1", "::1")


class PeerAllowList:
    def __init__(self, peers: Iterable[str]) -> None:
        """`peers`: addresses or networks ("10.0.0.5", "10.0.0.0/24", "::1")."""
        self.networks: tuple[IpNetwork, ...] = tuple(
            ipaddress.ip_network(peer, strict=False) for peer in peers
        )

    def allows(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host.split("%", 1)[0])  # drop an IPv6 scope id
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # a dual-stack socket shows IPv4 peers as ::ffff:a.b.c.d
        return any(address in network for network in self.networks)


def bound_addresses(server: asyncio.Server | None) -> list[tuple[str, int]]:
    """(host, port) of each socket a running server listens on; [] when it is not running."""
    if server is None:
        return []
    return [socket.getsockname()[:2] for socket in server.sockets]


def describe_address(peer: object) -> str:
    """`127.0.0.1:4573`, `[::1]:4573`, or whatever the peer is, as text."""
    if isinstance(peer, tuple) and len(peer) >= 2:
        host, port = peer[0], peer[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(peer)
