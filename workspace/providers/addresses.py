"""Where provider outputs may be fetched from: public addresses, judged when connecting.

A provider's answer names the URL of its output, so a hostile or compromised gateway could
point us at an internal service (a database console, the cloud metadata endpoint) and have its
answer stored and served to members. Outputs are therefore fetched only from public addresses.

The check runs at connect time, on the addresses the name actually resolved to, for the first
request and for every redirect hop alike, so DNS rebinding (a name that resolves to a public
address when checked and to 127.0.0.1 when used) cannot slip through. Two exceptions, both
chosen by an operator: the channel's own base URL origin (its API and any file on that origin,
such as the simulator's /cdn), and the hosts listed in the channel's ``private_output_hosts``.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpcore

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")
_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_HOST_NAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")
_SEPARATORS = re.compile(r"[\s,]+")


class OutputRefused(Exception):
    """An output URL led to an address outputs may not be fetched from; nothing was sent."""


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    # IPv6 forms that carry an IPv4 address and reach it: ::ffff:127.0.0.1 and friends.
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_is_public(address: IPAddress) -> bool:
    """Whether ``address`` is a globally routable unicast address (and so not one of ours)."""
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        return address_is_public(embedded)
    if isinstance(address, ipaddress.IPv6Address) and address.is_site_local:
        return False
    return (
        address.is_global
        and address not in _CGNAT
        and not (
            address.is_private
            or address.is_loopback
            or address.is_link_local
            or address.is_multicast
            or address.is_reserved
            or address.is_unspecified
        )
    )


def parse_private_hosts(text: str) -> tuple[frozenset[str], tuple[IPNetwork, ...]]:
    """Split a channel's ``private_output_hosts`` into host names and networks.

    Raises ValueError naming the first entry that is neither a host name, an IP address nor a
    CIDR range.
    """
    names: set[str] = set()
    networks: list[IPNetwork] = []
    for entry in _SEPARATORS.split(text.strip()):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            continue
        except ValueError:
            pass
        name = entry.lower().rstrip(".")
        if not _HOST_NAME.match(name) or name.replace(".", "").isdigit():
            raise ValueError(
                f"“{entry}” is neither a host name, an IP address nor a CIDR range "
                "(for example files.internal, 10.0.0.5 or 10.0.0.0/8)."
            )
        names.add(name)
    return frozenset(names), tuple(networks)


def _address(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])  # drop an IPv6 zone id
    except ValueError:
        return None


@dataclass(frozen=True)
class OutputPolicy:
    """Which hosts outputs may come from besides public ones; see the module docstring."""

    trusted: frozenset[tuple[str, int]] = frozenset()
    private_names: frozenset[str] = frozenset()
    private_networks: tuple[IPNetwork, ...] = field(default_factory=tuple)

    @classmethod
    def for_channel(
        cls, *, trusted: Iterable[tuple[str, int]], private_output_hosts: str
    ) -> OutputPolicy:
        names, networks = parse_private_hosts(private_output_hosts)
        return cls(
            trusted=frozenset((host.lower(), port) for host, port in trusted),
            private_names=names,
            private_networks=networks,
        )

    def skips_check(self, host: str, port: int) -> bool:
        host = host.lower().rstrip(".")
        return (host, port) in self.trusted or host in self.private_names

    def allows(self, address: IPAddress) -> bool:
        return address_is_public(address) or any(
            address.version == network.version and address in network
            for network in self.private_networks
        )

    def vet(self, host: str, port: int) -> list[str]:
        """The addresses ``host`` resolves to, once every one of them is allowed.

        Raises OutputRefused when any is not (a name that also resolves to an internal address
        is refused rather than raced), and httpcore.ConnectError when the name does not resolve.
        """
        try:
            found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise httpcore.ConnectError(f"could not resolve {host}: {exc}") from exc
        addresses: list[str] = []
        for _family, _type, _proto, _name, sockaddr in found:
            text = str(sockaddr[0])
            address = _address(text)
            if address is None or not self.allows(address):
                raise OutputRefused(
                    f"The provider pointed at a private address ({text}); outputs are fetched "
                    "only from public addresses. An admin can allow this host on the channel."
                )
            if text not in addresses:
                addresses.append(text)
        if not addresses:
            raise httpcore.ConnectError(f"{host} resolved to no address")
        return addresses


class VettedBackend(httpcore.SyncBackend):
    """httpcore's socket backend, connecting only to addresses the policy allows.

    It connects to the vetted address itself, so nothing resolves the name a second time;
    TLS still verifies and sends the URL's host name (httpcore takes SNI from the URL).
    """

    def __init__(self, policy: OutputPolicy) -> None:
        self._policy = policy

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        if self._policy.skips_check(host, port):
            return super().connect_tcp(host, port, timeout, local_address, socket_options)
        last_error: httpcore.ConnectError | None = None
        for address in self._policy.vet(host, port):
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as error:
                last_error = error
        assert last_error is not None
        raise last_error
