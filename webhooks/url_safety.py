"""Which CRM URLs we may POST to: http(s) only, and never into our own networks (SSRF).

Checked when an endpoint is saved and again before every send, since DNS can change.
WEBHOOK_ALLOW_PRIVATE_NETWORKS lifts the network rule for local development and tests.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings


class UnsafeURL(ValueError):
    """The URL may not be used as a webhook target; the message says why."""


# IPv6 prefixes whose last 32 bits are an IPv4 address a translator or tunnel may deliver to:
# NAT64, IPv4-translated (SIIT) and the deprecated IPv4-compatible form (::a.b.c.d).
EMBEDS_IPV4 = [
    ipaddress.ip_network("64:ff9b::/96"),
    ipaddress.ip_network("::ffff:0:0:0/96"),
    ipaddress.ip_network("::/96"),
]


def _blocked(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        if address.is_site_local:  # fec0::/10: deprecated, yet Python counts it as global
            return True
        # IPv6 forms that carry an IPv4 address: judge the IPv4 address inside.
        if address.ipv4_mapped:
            address = address.ipv4_mapped
        elif address.sixtofour:
            address = address.sixtofour
        elif int(address) > 1 and any(address in net for net in EMBEDS_IPV4):
            address = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return not address.is_global or address.is_multicast


def check_url(url: str, *, resolve: bool = True) -> None:
    """Raise UnsafeURL unless `url` is http(s) and every address its host resolves to is public.

    `resolve=False` checks the URL's form only: the sender vets the addresses itself where
    it connects."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise UnsafeURL("Only http:// and https:// URLs are allowed.")
    if not parts.hostname:
        raise UnsafeURL("The URL has no host.")
    if parts.username or parts.password:
        raise UnsafeURL("Put credentials in the endpoint's authentication, not in the URL.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as error:
        raise UnsafeURL(f"The URL's port is not valid ({error}).") from None
    if resolve and not settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS:
        resolve_allowed(parts.hostname, port)


def resolve_allowed(host: str, port: int) -> list[tuple]:
    """Resolve `host` and return its getaddrinfo entries, all of them allowed targets;
    raise UnsafeURL if it does not resolve or any address is not public.

    The sender connects to exactly these addresses (sync.sending), so a DNS answer that
    changes between this check and the connection (rebinding) cannot slip a private
    address in."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, ValueError) as error:
        raise UnsafeURL(f"The host {host!r} does not resolve ({error}).") from None
    if settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS:
        return infos
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if _blocked(address):
            raise UnsafeURL(
                f"{host} resolves to {address}, a loopback, private, link-local or "
                "reserved address: not allowed for a CRM endpoint."
            )
    return infos
