"""One attempt on the wire: the private-address rule on the address connected to, timeouts,
redirects and the kept part of a response body, against real receivers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any

import pytest

from callingbox_server.domains.webhooks import sender
from callingbox_server.domains.webhooks.sender import create_client, is_public, send
from tests.domains.webhooks.receivers import Reply, receiving, replies

BODY = b'{"id":"x"}'
HEADERS = {"Content-Type": "application/json"}


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "192.0.2.1",
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
    ],
)
def test_non_public_addresses(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"]
)
def test_public_addresses(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))


class TestPrivateAddressRule:
    @pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
    async def test_refused_when_not_allowed(self, host: str) -> None:
        with receiving() as receiver:
            async with create_client(allow_private=False) as client:
                outcome = await send(client, f"http://{host}:{receiver.port}/hook", BODY, HEADERS)

            assert outcome.status is None
            assert outcome.error is not None
            assert "non-public address" in outcome.error
            assert "CALLINGBOX_WEBHOOK_ALLOW_PRIVATE=true" in outcome.error
            if host == "localhost":
                assert outcome.error.startswith("localhost resolves to ")
            assert outcome.summary == outcome.error
            assert await receiver.quiet_for(0.1) == 0

    @pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
    async def test_sent_when_allowed(self, host: str) -> None:
        with receiving() as receiver:
            async with create_client(allow_private=True) as client:
                outcome = await send(client, f"http://{host}:{receiver.port}/hook", BODY, HEADERS)

            assert (outcome.status, outcome.ok, outcome.error) == (200, True, None)
            (received,) = await receiver.wait_for(1)
            assert received.body == BODY

    async def test_one_lookup_and_the_connection_goes_to_the_checked_address(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """DNS rebinding: a second look-up would answer elsewhere; there is none."""
        loop = asyncio.get_running_loop()
        lookups: list[str] = []

        async def rebinding(host: str, port: Any, **kwargs: Any) -> list[Any]:
            lookups.append(host)
            address = "127.0.0.1" if len(lookups) == 1 else "10.255.255.1"
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

        monkeypatch.setattr(loop, "getaddrinfo", rebinding)
        with receiving() as receiver:
            async with create_client(allow_private=True) as client:
                url = f"http://rebind.example:{receiver.port}/hook"
                outcome = await send(client, url, BODY, HEADERS)

            assert outcome.status == 200
            (received,) = await receiver.wait_for(1)
            assert received.headers["Host"] == f"rebind.example:{receiver.port}"
            assert lookups == ["rebind.example"]

    async def test_a_public_name_that_resolves_to_loopback_is_refused(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        loop = asyncio.get_running_loop()

        async def to_loopback(host: str, port: Any, **kwargs: Any) -> list[Any]:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

        monkeypatch.setattr(loop, "getaddrinfo", to_loopback)
        with receiving() as receiver:
            async with create_client(allow_private=False) as client:
                url = f"https://hooks.example.com:{receiver.port}/hook"
                outcome = await send(client, url, BODY, HEADERS)

            assert outcome.error is not None
            assert outcome.error.startswith("hooks.example.com resolves to 127.0.0.1, which is")
            assert await receiver.quiet_for(0.1) == 0


class TestResponses:
    async def test_only_the_first_1024_bytes_are_kept(self) -> None:
        with receiving(replies(Reply(200, body=b"a" * 5000))) as receiver:
            async with create_client(allow_private=True) as client:
                outcome = await send(client, receiver.url, BODY, HEADERS)

        assert outcome.body == "a" * 1024

    async def test_a_redirect_is_a_failure_and_is_not_followed(self) -> None:
        with receiving(replies(Reply(302, headers={"Location": "/elsewhere"}))) as receiver:
            async with create_client(allow_private=True) as client:
                outcome = await send(client, receiver.url, BODY, HEADERS)

            assert (outcome.status, outcome.ok) == (302, False)
            assert outcome.summary == "receiver answered 302 (redirects are not followed)"
            assert await receiver.quiet_for(0.1) == 1

    async def test_a_refused_connection(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        async with create_client(allow_private=True) as client:
            outcome = await send(client, f"http://127.0.0.1:{port}/hook", BODY, HEADERS)

        assert outcome.status is None
        assert outcome.error is not None
        assert outcome.error.startswith("could not connect")

    async def test_a_hanging_receiver_times_out(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(sender, "TIMEOUT_SECONDS", 0.3)
        with receiving(replies(Reply(200, delay=2.0))) as receiver:
            async with create_client(allow_private=True) as client:
                outcome = await send(client, receiver.url, BODY, HEADERS)

        assert outcome.status is None
        assert outcome.error is not None
        assert outcome.error.startswith("timed out after")
        assert 250 <= outcome.duration_ms < 1500

    async def test_retry_after_is_read(self) -> None:
        with receiving(replies(Reply(429, headers={"Retry-After": "120"}))) as receiver:
            async with create_client(allow_private=True) as client:
                outcome = await send(client, receiver.url, BODY, HEADERS)

        assert (outcome.status, outcome.retry_after) == (429, 120.0)
