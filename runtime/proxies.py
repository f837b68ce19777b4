"""Who sent a request: the peer, or the client a trusted reverse proxy names.

Behind a proxy every request arrives from the proxy's address (often loopback), and
the real client is in `X-Forwarded-For`, which any client can also write itself. So
the header counts only when the peer is listed in `app.trusted_proxies`, and then only
its right-most address that is not a trusted proxy: each proxy appends the address it
saw, so the entries left of that one are whatever the client claimed.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from quart import current_app, has_websocket_context, request, websocket

__all__ = ["RequestClient", "forwarded_client", "parse_networks", "request_client"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# Headers only proxies add: a request carrying one did not come straight from its client.
_FORWARDING_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-IP")
_MAX_ADDRESS = 64  # an unparsable hop is kept as text (a rate-limit key); keep it short


@dataclass(frozen=True, slots=True)
class RequestClient:
    address: str  # the client's address as best known, "unknown" when there is none
    forwarded: bool  # the request carries proxy headers, trusted or not

    @property
    def is_local(self) -> bool:
        """A caller on this host, straight to the server: no proxy in between."""
        parsed = _parse_address(self.address)
        return not self.forwarded and parsed is not None and parsed.is_loopback


def request_client() -> RequestClient:
    """The client of the current request or WebSocket, by `app.trusted_proxies`."""
    runtime = current_app.extensions.get("runtime")  # absent when Realtime serves another app
    trusted = parse_networks(runtime.config.app.trusted_proxies if runtime else ())
    source = websocket if has_websocket_context() else request
    headers = source.headers
    address = forwarded_client(source.remote_addr, headers.getlist("X-Forwarded-For"), trusted)
    forwarded = any(name in headers for name in _FORWARDING_HEADERS)
    return RequestClient(address=address or "unknown", forwarded=forwarded)


def forwarded_client(
    peer: str | None, forwarded_for: Sequence[str], trusted: tuple[Network, ...]
) -> str | None:
    """The client's address: `peer`, or if it is a trusted proxy the right-most address of
    `forwarded_for` (the X-Forwarded-For headers, in order) that is not a trusted proxy."""
    if peer is None or not _trusted(peer, trusted):
        return peer
    hops = [hop.strip() for value in forwarded_for for hop in value.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, trusted):
            parsed = _parse_address(hop)
            return str(parsed) if parsed is not None else hop[:_MAX_ADDRESS]
    return hops[0] if hops else peer  # every hop a trusted proxy: the farthest one


@functools.lru_cache(maxsize=16)
def parse_networks(values: tuple[str, ...]) -> tuple[Network, ...]:
    """Addresses and CIDR networks (`10.0.0.0/8`, `::1`); ValueError for anything else."""
    return tuple(ipaddress.ip_network(value.strip(), strict=False) for value in values)


def _trusted(address: str, trusted: tuple[Network, ...]) -> bool:
    parsed = _parse_address(address)
    return parsed is not None and any(parsed in network for network in trusted)


def _parse_address(text: str) -> Address | None:
    try:
        parsed = ipaddress.ip_address(text)
    except ValueError:
        return None
    # An IPv4 client on a dual-stack socket arrives as ::ffff:a.b.c.d.
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        return parsed.ipv4_mapped
    return parsed
