"""Where a webhook may go, and one POST to it.

A merchant's URL must not reach into the network refapp runs in: a host that resolves to a
loopback, private, link-local, shared, reserved, multicast or unspecified address, or to a cloud
metadata service, is refused when the endpoint is saved and again at each delivery (DNS can
change), and the request connects to the address that was checked, not to a second lookup
(REFAPP_WEBHOOKS_ALLOW_PRIVATE=1 lifts the check, for development and tests). Redirects are not
followed, the whole exchange has a deadline, and at most MAX_BODY bytes of the answer are read.

A worker delivers a batch of messages through one `Client`, which keeps one connection per checked
address open between them (HTTP keep-alive): the check still runs for every message, and a message
whose host now resolves elsewhere gets a connection of its own. DNS answers are kept DNS_SECONDS,
so that a batch of a hundred messages to one host asks the resolver once, not a hundred times.
"""

from __future__ import annotations

import functools
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
# How long a host's addresses are reused. Short: a name moved to a private address is refused within
# seconds; failures are never kept.
DNS_SECONDS = 5.0
# (host, port) -> (monotonic expiry, addresses)
_resolved: dict[tuple[str, int], tuple[float, list[str]]] = {}
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
        addresses = _resolve(host, port)
    except (OSError, UnicodeError) as exc:
        raise UnsafeUrl(f"The host {host} does not resolve.") from exc
    if not addresses:
        raise UnsafeUrl(f"The host {host} does not resolve.")
    if not settings.REFAPP_WEBHOOKS_ALLOW_PRIVATE:
        for address in addresses:
            if not _allowed(ipaddress.ip_address(address.split("%")[0])):
                raise UnsafeUrl(f"The host {host} resolves to a private or reserved address.")
    return parts.scheme, host, port, addresses[0]


def _resolve(host: str, port: int) -> list[str]:
    now = time.monotonic()
    known = _resolved.get((host, port))
    if known is not None and known[0] > now:
        return known[1]
    addresses = [info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]
    if len(_resolved) > 1000:  # a worker that has seen many hosts: start again rather than grow
        _resolved.clear()
    if addresses:
        _resolved[(host, port)] = (now + DNS_SECONDS, addresses)
    return addresses


def forget_addresses() -> None:
    """Tests: every host is resolved again."""
    _resolved.clear()


@dataclass
class Answer:
    status: int | None
    body: bytes
    error: str
    duration_ms: int


def _open(address: str, port: int, timeout: float) -> socket.socket:
    sock = socket.create_connection((address, port), timeout)
    # As http.client's own connect() does: it writes the headers and the body in two sends, and on
    # a kept-alive connection Nagle's algorithm holds the body back until the receiver's delayed
    # ACK of the headers, 40 ms later (the bench measured every POST at 44 ms before this).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One context per process: building one loads the CA store, several ms per connection."""
    return ssl.create_default_context()


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = _open(self._address, self.port, self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout, context=_tls_context())
        self._address = address

    def connect(self) -> None:
        sock = _open(self._address, self.port, self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


_Key = tuple[str, str, int, str]  # scheme, host, port, checked address
# A kept-alive connection the receiver closed meanwhile fails like this before any answer: the
# request is sent once more on a fresh connection (at least once: receivers dedupe by webhook-id).
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


class Client:
    """POSTs to webhook URLs, keeping one open connection per checked address until close()."""

    def __init__(self, *, timeout: float = TIMEOUT):
        self.timeout = timeout
        self._idle: dict[_Key, http.client.HTTPConnection] = {}
        self.connections_opened = 0

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        for conn in self._idle.values():
            conn.close()
        self._idle.clear()

    def _connect(self, key: _Key) -> http.client.HTTPConnection:
        scheme, host, port, address = key
        cls = _PinnedHTTPSConnection if scheme == "https" else _PinnedHTTPConnection
        self.connections_opened += 1
        return cls(host, port, address, self.timeout)

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> Answer:
        """POST body to url, checked and pinned to the checked address; never raises."""
        started = time.monotonic()

        def elapsed() -> int:
            return int((time.monotonic() - started) * 1000)

        try:
            key = check_url(url)
        except UnsafeUrl as exc:
            return Answer(None, b"", str(exc), elapsed())
        parts = urlsplit(url)
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        conn: http.client.HTTPConnection | None = self._idle.pop(key, None)
        reused = conn is not None
        if conn is None:
            conn = self._connect(key)
        deadline = started + self.timeout
        try:
            try:
                conn.request("POST", target, body=body, headers=headers)
                response = conn.getresponse()
            except _STALE:
                if not reused:
                    raise
                conn.close()
                conn = self._connect(key)
                conn.request("POST", target, body=body, headers=headers)
                response = conn.getresponse()
            chunks, size = [], 0
            while size < MAX_BODY and time.monotonic() < deadline:
                chunk = response.read1(MAX_BODY - size)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
            if response.length == 0 and not response.isclosed():
                response.read()  # read1 does not mark a Content-Length answer as finished; this does
            if response.isclosed() and not response.will_close:
                # The whole answer was read and the receiver keeps the connection: the next
                # message to this address goes on it.
                self._idle[key], conn = conn, None
            return Answer(response.status, b"".join(chunks), "", elapsed())
        except (OSError, http.client.HTTPException, ValueError) as exc:
            return Answer(None, b"", f"{type(exc).__name__}: {exc}"[:500], elapsed())
        finally:
            if conn is not None:
                conn.close()


def post(url: str, body: bytes, headers: dict[str, str], *, timeout: float = TIMEOUT) -> Answer:
    """One POST on a connection of its own; never raises."""
    with Client(timeout=timeout) as client:
        return client.post(url, body, headers)
