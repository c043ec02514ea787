"""The operator's allow-list of webhook targets (`FLEET_WEBHOOK_ALLOW`): networks and host names that
webhooks may reach although the egress policy refuses inner addresses. In a cluster the backend that
receives webhooks usually has a private address; allowing it must not also open input-image fetching to
the private network, which `FLEET_ALLOW_PRIVATE_URLS` would.

Entries, comma-separated: a network in CIDR form (`10.20.0.0/16`, `fd00::/8`), one address
(`192.168.1.7`, `::1`), a host name (`hooks.internal`), or every name under a domain
(`*.svc.cluster.local`). A URL whose host name is listed may resolve anywhere; any other host must
resolve only to public addresses or to addresses inside a listed network.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class AllowList:
    networks: tuple[Network, ...] = ()
    hosts: tuple[str, ...] = ()  # lower case; "*.x" allows every name under x
    entries: tuple[str, ...] = ()

    @classmethod
    def parse(cls, entries: list[str] | tuple[str, ...]) -> AllowList:
        """ValueError naming the first entry that is neither a network, an address nor a host name."""
        networks: list[Network] = []
        hosts: list[str] = []
        for raw in entries:
            entry = raw.strip().lower()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            except ValueError:
                pass
            if not _host_pattern(entry):
                raise ValueError(f"{raw!r} is neither a network (CIDR), an address nor a host name")
            hosts.append(entry)
        return cls(tuple(networks), tuple(hosts), tuple(e.strip() for e in entries if e.strip()))

    def __bool__(self) -> bool:
        return bool(self.networks or self.hosts)

    def allows_host(self, host: str) -> bool:
        name = host.lower().rstrip(".")
        return any(_matches(name, pattern) for pattern in self.hosts)

    def allows_address(self, address: str) -> bool:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        return any(ip.version == network.version and ip in network for network in self.networks)


def _matches(name: str, pattern: str) -> bool:
    return name.endswith(pattern[1:]) if pattern.startswith("*.") else name == pattern


def _host_pattern(entry: str) -> bool:
    name = entry.removeprefix("*.")
    return bool(name) and all(_label(label) for label in name.split("."))


def _label(label: str) -> bool:
    return 0 < len(label) <= 63 and label.isascii() and label.replace("-", "").isalnum()
