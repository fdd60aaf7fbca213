"""Where a webhook may go, and one POST to it.

A merchant's URL must not reach into the network refapp runs in: a host that resolves to a
loopback, private, link-local, shared, reserved, multicast or unspecified address, or to a cloud
metadata service, is refused when the endpoint is saved and again at each delivery (DNS can
change), and the request connects to the address that was checked, not to a second lookup
(REFAPP_WEBHOOKS_ALLOW_PRIVATE=1 lifts the check, for development and tests). Redirects are not
followed, the whole exchange has a deadline, and at most MAX_BODY bytes of the answer are read.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

TIMEOUT = 10.0
MAX_BODY = 64 * 1024
_METADATA = {
    ipaddress.ip_address("169.254.169.254"),
    ipaddress.ip_address("169.254.170.2"),
    ipaddress.ip_address("100.100.100.200"),
    ipaddress.ip_address("fd00:ec2::254"),
}


class UnsafeUrl(Exception):
    pass


def _allowed(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast and ip not in _METADATA


def check_url(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, address to connect to); UnsafeUrl when refapp must not send there."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeUrl("The URL is not valid.") from exc
    if parts.scheme not in ("http", "https"):
        raise UnsafeUrl("Use an http or https URL.")
    host = parts.hostname
    if not host:
        raise UnsafeUrl("The URL has no host.")
    if parts.username or parts.password:
        raise UnsafeUrl("Credentials in the URL are not allowed.")
    port = port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise UnsafeUrl(f"The host {host} does not resolve.") from exc
    addresses = [info[4][0] for info in infos]
    if not addresses:
        raise UnsafeUrl(f"The host {host} does not resolve.")
    if not settings.REFAPP_WEBHOOKS_ALLOW_PRIVATE:
        for address in addresses:
            if not _allowed(ipaddress.ip_address(address.split("%")[0])):
                raise UnsafeUrl(f"The host {host} resolves to a private or reserved address.")
    return parts.scheme, host, port, addresses[0]


@dataclass
class Answer:
    status: int | None
    body: bytes
    error: str
    duration_ms: int


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def post(url: str, body: bytes, headers: dict[str, str], *, timeout: float = TIMEOUT) -> Answer:
    """POST body to url, checked and pinned to the checked address; never raises."""
    started = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        scheme, host, port, address = check_url(url)
    except UnsafeUrl as exc:
        return Answer(None, b"", str(exc), elapsed())
    parts = urlsplit(url)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    cls = _PinnedHTTPSConnection if scheme == "https" else _PinnedHTTPConnection
    conn = cls(host, port, address, timeout)
    deadline = started + timeout
    try:
        conn.request("POST", target, body=body, headers=headers)
        response = conn.getresponse()
        chunks, size = [], 0
        while size < MAX_BODY and time.monotonic() < deadline:
            chunk = response.read1(MAX_BODY - size) if hasattr(response, "read1") else b""
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return Answer(response.status, b"".join(chunks), "", elapsed())
    except (OSError, http.client.HTTPException, ValueError) as exc:
        return Answer(None, b"", f"{type(exc).__name__}: {exc}"[:500], elapsed())
    finally:
        conn.close()
