"""Outbound URLs: the one SSRF policy for everything the edge fetches (input images) or posts to (webhooks).

Unless private targets are allowed, a URL is refused when its host resolves to any address but global
unicast: private, loopback, link-local (the cloud metadata address 169.254.169.254 included), shared
(CGNAT), multicast, reserved and unspecified ones, and IPv6 forms that carry such an IPv4 address
(`::ffff:a.b.c.d`, 6to4 `2002::/16`, Teredo). A literal host is judged by the address the resolver makes
of it, so `2130706433`, `0177.0.0.1` and `[::ffff:127.0.0.1]` are all 127.0.0.1. The request then goes
to the very address that was checked (`PinnedUrl`), so a second DNS answer cannot swap in another one.

Webhook targets may also pass the operator's allow-list (`FLEET_WEBHOOK_ALLOW`, `edge.allowlist`):
listed networks and host names, for webhooks only; input URLs never use it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass, field
from typing import Any

import httpx

from edge.allowlist import AllowList
from edge.settings import EdgeSettings

SCHEMES = ("http", "https")
WEBHOOK_HINT = (
    "; to let webhooks reach it, list its network or host name in FLEET_WEBHOOK_ALLOW"
    " (e.g. 10.0.0.0/8,hooks.internal)"
)
NOTHING_ALLOWED = AllowList()


class UrlRefused(Exception):
    """The URL may not or cannot be reached; `kind` is `url_refused` or `url_unreachable`."""

    def __init__(self, message: str, kind: str = "url_refused") -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind


@dataclass(frozen=True)
class PinnedUrl:
    """Where a request for a checked URL goes: `target` names the pinned address; `headers` and
    `extensions` keep the original host name for the Host header and TLS (SNI and certificate)."""

    target: httpx.URL
    headers: dict[str, str] = field(default_factory=dict)
    extensions: dict[str, Any] = field(default_factory=dict)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    return None


def address_refused(address: str) -> bool:
    """True for every address a public URL must not reach: anything but global unicast."""
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None and address_refused(str(embedded)):
            return True
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


def parse_url(url: str | httpx.URL) -> httpx.URL:
    """An absolute http(s) URL with a host, or `UrlRefused`."""
    try:
        parsed = url if isinstance(url, httpx.URL) else httpx.URL(url.strip())
    except (httpx.InvalidURL, TypeError, ValueError):
        raise UrlRefused("not a valid URL") from None
    if parsed.scheme not in SCHEMES or not parsed.host:
        raise UrlRefused("only http(s) URLs with a host can be reached")
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise UrlRefused(f"port {parsed.port} is out of range")
    return parsed


async def pin(
    url: str | httpx.URL, allow_private: bool, allowed: AllowList = NOTHING_ALLOWED, hint: str = ""
) -> PinnedUrl:
    """Check `url` against the policy and choose the address to connect to; `UrlRefused` when it may not
    go. An inner address passes when `allowed` lists its network, any address when it lists the host;
    `hint` ends the refusal (how to allow it)."""
    parsed = parse_url(url)
    if allow_private:
        return PinnedUrl(parsed)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        addresses = await resolve(parsed.host, port)
    except (OSError, UnicodeError):
        raise UrlRefused(f"cannot resolve host {parsed.host!r}", "url_unreachable") from None
    inner = [a for a in addresses if address_refused(a) and not allowed.allows_address(a)]
    if not addresses or (inner and not allowed.allows_host(parsed.host)):
        raise UrlRefused(f"URL host {parsed.host!r} resolves to a private or reserved address{hint}")
    pinned = addresses[0]
    extensions = {"sni_hostname": parsed.host} if parsed.scheme == "https" else {}
    return PinnedUrl(parsed.copy_with(host=pinned), {"Host": parsed.netloc.decode("ascii")}, extensions)


async def pin_webhook(url: str, settings: EdgeSettings) -> PinnedUrl:
    """The webhook policy: the input URLs' rules and switch (`allow_private_urls`), plus the operator's
    allow-list. Called when a job is submitted (a refused target is a 422) and again when its webhook is
    delivered (DNS may change)."""
    return await pin(url, settings.allow_private_urls, settings.webhook_allow_list, WEBHOOK_HINT)
