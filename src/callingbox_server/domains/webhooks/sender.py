"""One HTTP attempt of a delivery, sent like a good neighbour.

- 10 s for the whole attempt (connect, send, response head, the kept part of the body).
- The private-address rule is checked on the address connected to: the transport's network
  backend resolves the host once, checks that address and connects to it, so a DNS answer that
  changes between a check and a connect (DNS rebinding) cannot get around it. httpcore still
  knows the host by name, so TLS verifies the certificate for it (SNI) and ``Host`` names it.
- No redirects are followed (a 3xx is a failed attempt), no proxy from the environment is used,
  and only the first 1,024 bytes of a response body are read.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import httpcore
import httpx

from callingbox_server.domains.webhooks.schedule import parse_retry_after

TIMEOUT_SECONDS = 10.0
MAX_RESPONSE_BYTES = 1024
PRIVATE_HINT = "set CALLINGBOX_WEBHOOK_ALLOW_PRIVATE=true to allow it"


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether an address is on the public internet: not private, loopback, link-local,
    shared (CGNAT), multicast, reserved or unspecified; IPv4 written in IPv6 counts as IPv4."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


class PrivateAddress(httpcore.ConnectError):
    """The destination resolved to an address webhooks may not be sent to."""


async def resolve(host: str, port: int) -> str:
    """The first address ``host`` resolves to (an address literal resolves to itself)."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise httpcore.ConnectError(f"could not resolve {host}: {exc.strerror}") from exc
    return str(infos[0][4][0])


def check_address(host: str, address: str, allow_private: bool) -> None:
    if allow_private or is_public(ipaddress.ip_address(address)):
        return
    shown = host if host == address else f"{host} resolves to {address}, which"
    raise PrivateAddress(
        f"{shown} is a private, loopback, link-local or otherwise non-public address "
        f"({PRIVATE_HINT})"
    )


class _CheckedBackend(httpcore.AsyncNetworkBackend):
    """Connects to the address it checked, never to a second look-up of the name."""

    def __init__(self, allow_private: bool) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._allow_private = allow_private

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        address = await resolve(host, port)
        check_address(host, address, self._allow_private)
        return await self._inner.connect_tcp(
            address,
            port,
            timeout=timeout,
            local_address=local_address,
            socket_options=socket_options,
        )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("webhooks are never sent to a unix socket")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def create_client(*, allow_private: bool, max_connections: int = 1000) -> httpx.AsyncClient:
    tls = httpx.create_ssl_context(trust_env=False)  # loading the CA bundle costs ~0.3 s CPU
    transport = httpx.AsyncHTTPTransport(verify=tls, trust_env=False)
    # httpx builds its httpcore pool without a way to pass a network backend: build the same
    # pool with ours (httpx's AsyncHTTPTransport only forwards requests to ``_pool``).
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=tls,
        max_connections=max_connections,
        max_keepalive_connections=100,
        keepalive_expiry=5.0,
        network_backend=_CheckedBackend(allow_private),
    )
    return httpx.AsyncClient(
        transport=transport,
        timeout=httpx.Timeout(TIMEOUT_SECONDS),
        follow_redirects=False,
        trust_env=False,
        headers={"User-Agent": "callingbox-server-webhooks"},
    )


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt came to: a response (``status``), or an ``error`` before one."""

    started_at: datetime
    duration_ms: int
    status: int | None = None
    body: str | None = None
    error: str | None = None
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def summary(self) -> str | None:
        """The delivery's ``last_error`` after this attempt (None when it succeeded)."""
        if self.ok:
            return None
        if self.status is None:
            return self.error
        if 300 <= self.status < 400:
            return f"receiver answered {self.status} (redirects are not followed)"
        return f"receiver answered {self.status}"


async def _first_bytes(response: httpx.Response, limit: int) -> bytes:
    kept = bytearray()
    async for chunk in response.aiter_raw():
        kept += chunk
        if len(kept) >= limit:
            break
    return bytes(kept[:limit])


def _describe(exc: Exception) -> str:
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return f"timed out after {TIMEOUT_SECONDS:.0f} s"
    message = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.ConnectError) and "non-public address" not in message:
        return f"could not connect: {message}"
    return message


async def send(
    client: httpx.AsyncClient, url: str, body: bytes, headers: Mapping[str, str]
) -> Outcome:
    """POST ``body`` to ``url``; never raises for anything the receiver or network does."""
    started_at = datetime.now(UTC)
    start = time.perf_counter()

    def elapsed_ms() -> int:
        return round((time.perf_counter() - start) * 1000)

    try:
        async with asyncio.timeout(TIMEOUT_SECONDS):
            async with client.stream("POST", url, content=body, headers=headers) as response:
                kept = await _first_bytes(response, MAX_RESPONSE_BYTES)
    except (httpx.HTTPError, TimeoutError, OSError) as exc:
        return Outcome(started_at, elapsed_ms(), error=_describe(exc))
    return Outcome(
        started_at,
        elapsed_ms(),
        status=response.status_code,
        body=kept.decode("utf-8", errors="replace"),
        retry_after=parse_retry_after(response.headers.get("retry-after")),
    )
