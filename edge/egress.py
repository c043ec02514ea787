"""Outbound HTTP to URLs that clients give (input images, webhooks): which addresses may be reached.

Unless private addresses are allowed, a host that resolves to any private, loopback, link-local,
multicast, reserved or metadata address is refused, and the connection goes to the very address that
was checked, so a second DNS answer cannot point it elsewhere.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass, field
from typing import Any

import httpx


class UrlRefused(Exception):
    """The URL may not or cannot be reached; `kind` is `url_refused` or `url_unreachable`."""

    def __init__(self, message: str, kind: str = "url_refused") -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind


@dataclass(frozen=True)
class PinnedUrl:
    """Where to connect, with the Host header and TLS name that keep the request the URL's."""

    target: httpx.URL
    headers: dict[str, str] = field(default_factory=dict)
    extensions: dict[str, Any] = field(default_factory=dict)


def address_refused(address: str) -> bool:
    """True for every address a public URL must not reach: anything but global unicast."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (
        not ip.is_global
        or ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


async def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (a literal address resolves to itself)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def pin(url: httpx.URL, allow_private: bool) -> PinnedUrl:
    """Check `url` and choose the address to connect to; raises `UrlRefused`."""
    if url.scheme not in ("http", "https") or not url.host:
        raise UrlRefused("only http(s) URLs can be reached")
    if allow_private:
        return PinnedUrl(url)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        addresses = await resolve(url.host, port)
    except OSError:
        raise UrlRefused(f"cannot resolve host {url.host!r}", "url_unreachable") from None
    if not addresses or any(address_refused(a) for a in addresses):
        raise UrlRefused(f"URL host {url.host!r} resolves to a private or reserved address")
    extensions = {"sni_hostname": url.host} if url.scheme == "https" else {}
    return PinnedUrl(url.copy_with(host=addresses[0]), {"Host": url.netloc.decode("ascii")}, extensions)
