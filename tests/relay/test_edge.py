"""The relay's edge: caps per address and in all, the header deadline, proxies, origins,
masks, floods, long URLs and security headers. The core without I/O first, then a
real relay on a free port of 127.0.0.1 with real clients, some of them raw sockets."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
import sys
from typing import Any

import aiohttp
import orjson
import pytest

from relay import protocol
from relay.config import ConfigError, RelayConfig, validate
from relay.edge import (
    HeadWatch,
    Ledger,
    Limits,
    LogLimiter,
    client_address,
    counted_as,
    max_connections_for,
    origin_allowed,
    parse_networks,
    parse_origins,
    security_headers,
)
from relay.ratelimit import RefusalWindow

from .conftest import BILLBOARD, OPERATOR, RunningRelay, StartRelay, recv, send, until
from .test_cli import ROOT, free_port

# --- the core, without I/O ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "client"),
    [
        ("203.0.113.9", ["198.51.100.1"], "", "203.0.113.9"),  # not a proxy: ignored
        ("127.0.0.1", ["198.51.100.1"], "127.0.0.1", "198.51.100.1"),
        # The leftmost hop is whatever the client wrote; the rightmost untrusted is real.
        ("127.0.0.1", ["6.6.6.6, 198.51.100.1"], "127.0.0.1", "198.51.100.1"),
        ("127.0.0.1", ["198.51.100.1, 10.0.0.7"], "127.0.0.1, 10.0.0.0/8", "198.51.100.1"),
        ("127.0.0.1", ["198.51.100.1", "10.0.0.7"], "127.0.0.1, 10.0.0.0/8", "198.51.100.1"),
        ("127.0.0.1", ["10.0.0.7"], "127.0.0.1, 10.0.0.0/8", "10.0.0.7"),  # all trusted
        ("127.0.0.1", ["nonsense"], "127.0.0.1", "127.0.0.1"),
        ("127.0.0.1", ["198.51.100.1:4711"], "127.0.0.1", "198.51.100.1"),
        ("::1", ["[2001:db8::5]:80"], "::1", "2001:db8::5"),
        ("::ffff:127.0.0.1", ["2001:db8::5"], "127.0.0.1", "2001:db8::5"),
        ("127.0.0.1", [], "127.0.0.1", "127.0.0.1"),
    ],
)
def test_forwarded_for_names_the_rightmost_hop_that_is_not_a_trusted_proxy(
    peer: str, forwarded: list[str], trusted: str, client: str
) -> None:
    assert client_address(peer, forwarded, parse_networks(trusted)) == client


def test_an_ipv6_client_is_counted_by_its_64_and_an_ipv4_one_by_its_address() -> None:
    assert counted_as("2001:db8:1:2:aaaa::1") == counted_as("2001:db8:1:2:bbbb::9")
    assert counted_as("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert counted_as("2001:db8:1:3::1") != counted_as("2001:db8:1:2::1")
    assert counted_as("198.51.100.7") == "198.51.100.7"
    assert counted_as("::1") == "::1"


def test_the_ledger_keeps_reserved_places_for_token_holders() -> None:
    ledger = Ledger(Limits(total=4, reserved=2, per_address=0))
    for n in range(3):
        assert ledger.open(n, f"198.51.100.{n}", proxied=False) is None
    assert ledger.identify(0, "198.51.100.0", holder=False) is None
    assert ledger.identify(1, "198.51.100.1", holder=False) is None
    # Two anonymous sockets fill the anonymous pool: a third is refused with a reason…
    assert ledger.identify(2, "198.51.100.2", holder=False) == "too_many_connections"
    ledger.close(2)
    # …while a token holder still gets in, up to the total.
    assert ledger.open(3, "198.51.100.3", proxied=False) is None
    assert ledger.identify(3, "198.51.100.3", holder=True) is None
    assert ledger.open(4, "198.51.100.4", proxied=False) is None
    assert ledger.open(5, "198.51.100.5", proxied=False) == "too_many_connections"
    assert (len(ledger), ledger.holders, ledger.anonymous, ledger.pending) == (4, 1, 2, 1)
    for key in range(6):
        ledger.close(key)
    assert (len(ledger), ledger.holders, ledger.anonymous, ledger.busiest()) == (0, 0, 0, 0)


def test_the_ledger_caps_an_address_with_room_for_its_token_holders() -> None:
    ledger = Ledger(Limits(total=100, reserved=2, per_address=3))
    for n in range(5):
        assert ledger.open(n, "192.0.2.1", proxied=False) is None
    assert ledger.open(5, "192.0.2.1", proxied=False) == "too_many_from_address"
    assert [ledger.identify(n, "192.0.2.1", holder=False) for n in range(3)] == [None] * 3
    assert ledger.identify(3, "192.0.2.1", holder=False) == "too_many_from_address"
    assert ledger.identify(0, "192.0.2.1", holder=False) is None  # its next request
    assert ledger.identify(4, "192.0.2.1", holder=True) is None  # no longer counted…
    assert ledger.open(6, "192.0.2.1", proxied=False) is None  # …so one more may wait
    assert ledger.busiest() == 5
    assert ledger.open(7, "192.0.2.2", proxied=False) is None  # another address


def test_the_ledger_counts_a_proxys_sockets_under_their_clients() -> None:
    ledger = Ledger(Limits(total=100, reserved=2, per_address=1))
    for n in range(10):  # a proxy may hold many sockets
        assert ledger.open(n, "127.0.0.1", proxied=True) is None
    assert ledger.identify(0, "198.51.100.1", holder=False) is None
    assert ledger.identify(1, "198.51.100.1", holder=False) == "too_many_from_address"
    assert ledger.identify(2, "198.51.100.2", holder=False) is None
    # A proxy reuses an idle upstream socket for another client: the count moves.
    assert ledger.identify(0, "198.51.100.3", holder=False) is None
    assert ledger.identify(1, "198.51.100.1", holder=False) is None
    assert ledger.identify(0, "198.51.100.2", holder=False) == "too_many_from_address"


def _frame(payload: bytes, masked: bool = True, opcode: int = 0x1) -> bytes:
    n = len(payload)
    mask_bit = 0x80 if masked else 0
    if n < 126:
        head = bytes([0x80 | opcode, mask_bit | n])
    elif n < 65536:
        head = bytes([0x80 | opcode, mask_bit | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([0x80 | opcode, mask_bit | 127]) + n.to_bytes(8, "big")
    if not masked:
        return head + payload
    key = b"\x11\x22\x33\x44"
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def test_mask_check_follows_frames_of_every_length_split_anywhere() -> None:
    stream = b"".join(_frame(b"x" * n) for n in (0, 1, 125, 126, 300, 65535, 65536))
    stream += _frame(b"", opcode=0x9)  # a ping
    for step in (1, 2, 3, 7, 1000, len(stream)):
        check = protocol.MaskCheck()
        assert all(check.feed(stream[i : i + step]) for i in range(0, len(stream), step))
    bad = stream + _frame(b"hello", masked=False)
    for step in (1, 5, len(bad)):
        check = protocol.MaskCheck()
        results = [check.feed(bad[i : i + step]) for i in range(0, len(bad), step)]
        # Told with the read that brings the bad header's second byte (its mask bit).
        assert results.index(False) == (len(stream) + 1) // step


def test_head_watch_sees_the_empty_line_across_reads() -> None:
    head = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    for step in (1, 2, 3, len(head)):
        watch = HeadWatch()
        done = [watch.feed(head[i : i + step]) for i in range(0, len(head), step)]
        assert done[-1] and not any(done[:-1])
    assert HeadWatch().feed(b"GET / HTTP/1.0\n\n")
    watch = HeadWatch()
    assert not watch.feed(b"GET / HTTP/1.1\r\n") and not watch.feed(b"X-Slow: 1\r\n")


def test_origins_default_to_the_relays_own_host() -> None:
    host = "127.0.0.1:8080"
    assert origin_allowed("http://127.0.0.1:8080", host, frozenset(), own_host=True)
    assert not origin_allowed("https://evil.example", host, frozenset(), own_host=True)
    assert not origin_allowed("null", host, frozenset(), own_host=True)
    assert not origin_allowed("http://127.0.0.1:9999", host, frozenset(), own_host=True)
    # Behind a TLS proxy the page is https and the Host has no port.
    assert origin_allowed("https://jam.example.org", "jam.example.org", frozenset(), True)
    listed = parse_origins("https://jam.example.org, HTTP://10.0.0.2:80/")
    assert listed == {"https://jam.example.org", "http://10.0.0.2"}
    assert origin_allowed("https://jam.example.org:443", host, listed, own_host=False)
    assert not origin_allowed("http://127.0.0.1:8080", host, listed, own_host=False)
    for bad in ("jam.example.org", "https://jam.example.org/keypad", "ftp://x"):
        with pytest.raises(ValueError, match="not an origin"):
            parse_origins(bad)


def test_the_csp_never_carries_a_hostile_host() -> None:
    csp = security_headers("127.0.0.1:8080")["Content-Security-Policy"]
    assert "connect-src 'self' ws://127.0.0.1:8080 wss://127.0.0.1:8080;" in csp
    assert "frame-ancestors 'none'" in csp and "script-src 'self';" in csp
    hostile = security_headers("x; script-src *")["Content-Security-Policy"]
    assert "connect-src 'self';" in hostile and "script-src *" not in hostile


def test_the_refusal_window_tells_a_flood_from_a_burst() -> None:
    window = RefusalWindow(limit=3, window_s=5.0)
    assert [window.refused(t) for t in (0.0, 1.0, 2.0)] == [False] * 3
    assert window.refused(3.0)  # a fourth within 5 s
    slow = RefusalWindow(limit=3, window_s=5.0)
    assert not any(slow.refused(t * 2.0) for t in range(100))  # one every 2 s, forever


def test_refusals_are_logged_once_a_minute_per_address_and_within_a_budget() -> None:
    limiter = LogLimiter(every_s=60.0, burst=3)
    assert limiter.allow(("full", "a"), 0.0)
    assert not limiter.allow(("full", "a"), 59.0)
    assert limiter.allow(("full", "a"), 61.0)
    assert limiter.allow(("full", "b"), 61.0) and limiter.allow(("full", "c"), 61.0)
    assert not limiter.allow(("full", "d"), 61.0)  # the burst is spent
    assert limiter.suppressed == 2


def test_max_connections_leaves_files_for_the_rest() -> None:
    assert max_connections_for(1024) == 896
    assert max_connections_for(1 << 20) == (1 << 20) - 256


@pytest.mark.parametrize(
    ("settings", "fragment"),
    [
        ({"max_connections": -1}, "max_connections must be 0 or more"),
        ({"max_connections": 10, "reserved_connections": 10}, "must be less than"),
        ({"connections_per_address": -5}, "connections_per_address"),
        ({"header_timeout_s": 0.0}, "header_timeout_s"),
        ({"trusted_proxies": "127.0.0.1, proxy.lan"}, "'proxy.lan' is not an IP"),
        ({"allowed_origins": "jam.example.org"}, "allowed_origins"),
    ],
)
def test_bad_edge_settings_say_what_to_fix(settings: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        validate(RelayConfig(**settings))


# --- a real relay ----------------------------------------------------------------------


class RawHttp:
    """A hand-made HTTP/1.1 client on one socket."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int, source: str = "127.0.0.1") -> RawHttp:
        """A socket to the relay from `source` (all of 127.0.0.0/8 is this machine)."""
        return cls(*await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0)))

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def response(self, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), timeout)
        status_line, *lines = head.decode().split("\r\n")
        headers = {}
        for line in lines:
            if ":" in line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        body = await asyncio.wait_for(self.reader.readexactly(length), timeout)
        return int(status_line.split()[1]), headers, body

    async def closed(self, timeout: float = 15.0) -> bytes:
        """Everything the relay sends until it closes the socket."""
        try:
            return await asyncio.wait_for(self.reader.read(), timeout)
        except ConnectionResetError:
            return b""

    def close(self) -> None:
        self.writer.close()


def upgrade(path: str = "/ws", **headers: str) -> bytes:
    extra = "".join(f"{name.replace('_', '-')}: {value}\r\n" for name, value in headers.items())
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        f"Sec-WebSocket-Version: 13\r\n{extra}\r\n"
    ).encode()


async def test_one_address_cannot_take_every_connection(start_relay: StartRelay) -> None:
    relay = await start_relay(connections_per_address=3, reserved_connections=2)
    async with aiohttp.ClientSession() as session:
        crowd = [await session.ws_connect(relay.ws_url) for _ in range(3)]
        one_more = await RawHttp.open(relay.port)
        await one_more.send(upgrade())
        status, headers, body = await one_more.response()
        assert status == 503 and headers["connection"] == "close"
        error = orjson.loads(body)
        assert error["code"] == "too_many_from_address" and "too many" in error["message"]
        await one_more.closed()
        # Token holders from the same address still get in: the billboard by its header,
        # a seed publisher by its URL.
        board = await session.ws_connect(
            relay.ws_url, headers={"Authorization": f"Bearer {BILLBOARD}"}
        )
        console = await session.ws_connect(f"{relay.ws_url}?token={OPERATOR}")
        for ws in (*crowd, board, console):
            await send(ws, {"type": "ping"})
            assert await recv(ws) == {"type": "pong"}
        assert relay.state.errors["too_many_from_address"] == 1


async def test_idle_sockets_count_against_their_address(start_relay: StartRelay) -> None:
    relay = await start_relay(connections_per_address=3, reserved_connections=2)
    # Sockets that never send a byte: three plus two (room for token holders) are held…
    idle = [await RawHttp.open(relay.port) for _ in range(5)]
    await until(lambda: _sockets(relay, 5))
    # …the next is answered 503 and closed at once, whatever it would have said.
    refused = await RawHttp.open(relay.port)
    assert (await refused.closed()).startswith(b"HTTP/1.1 503")
    assert relay.state.errors["too_many_from_address"] == 1
    neighbour = await RawHttp.open(relay.port, source="127.0.0.2")  # another address
    await neighbour.send(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert (await neighbour.response())[0] == 200
    neighbour.close()
    for sock in idle:
        sock.close()
    await until(lambda: _sockets(relay, 0))
    async with relay.session.get(relay.url + "/healthz") as resp:
        assert resp.status == 200  # the address is welcome again


async def test_the_anonymous_pool_leaves_room_for_token_holders(
    start_relay: StartRelay,
) -> None:
    relay = await start_relay(max_connections=5, reserved_connections=2, connections_per_address=0)
    async with aiohttp.ClientSession() as session:
        crowd = [await session.ws_connect(relay.ws_url) for _ in range(3)]
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(relay.ws_url)
        assert refused.value.status == 503
        await until(lambda: _sockets(relay, 3))
        holders = [
            await session.ws_connect(relay.ws_url, headers={"Authorization": f"Bearer {t}"})
            for t in (OPERATOR, BILLBOARD)
        ]
        # All five places are taken: the next socket is closed at accept.
        late = await RawHttp.open(relay.port)
        assert (await late.closed()).startswith(b"HTTP/1.1 503")
        for ws in (*crowd, *holders):
            await send(ws, {"type": "ping"})
            assert await recv(ws) == {"type": "pong"}
    assert relay.state.errors["too_many_connections"] == 2


async def test_slowloris_is_cut_at_the_header_deadline(start_relay: StartRelay) -> None:
    relay = await start_relay(header_timeout_s=0.5)
    slow = await RawHttp.open(relay.port)
    await slow.send(b"GET /keypad HTTP/1.1\r\n")

    async def trickle() -> None:
        with contextlib.suppress(ConnectionError):
            while not slow.writer.is_closing():
                await slow.send(b"X")  # a header byte every 0.2 s, never an empty line
                await asyncio.sleep(0.2)

    trickling = asyncio.get_running_loop().create_task(trickle())
    try:
        answer = await slow.closed(timeout=30)
    finally:
        trickling.cancel()
    assert answer.startswith(b"HTTP/1.1 408")
    assert relay.state.errors["header_timeout"] == 1
    async with relay.session.get(relay.url + "/keypad") as resp:
        assert resp.status == 200  # everyone else is served


async def test_a_keep_alive_socket_gets_the_same_deadline_for_its_next_head(
    start_relay: StartRelay,
) -> None:
    relay = await start_relay(header_timeout_s=0.5)
    conn = await RawHttp.open(relay.port)
    await conn.send(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert (await conn.response())[0] == 200
    await conn.send(b"GET /healthz HTTP/1.1\r\n")  # and then nothing more
    assert await conn.closed() == b""
    await until(lambda: _sockets(relay, 0))


async def test_a_websocket_outlives_the_header_deadline(start_relay: StartRelay) -> None:
    relay = await start_relay(header_timeout_s=0.3)
    ws = await relay.connect()
    await asyncio.sleep(1.0)  # well past the deadline: only the head was timed
    await send(ws, {"type": "ping"})
    assert await recv(ws) == {"type": "pong"}
    assert "header_timeout" not in relay.state.errors


async def test_forwarded_for_is_believed_only_from_trusted_proxies(
    start_relay: StartRelay, caplog: pytest.LogCaptureFixture
) -> None:
    proxied = await start_relay(trusted_proxies="127.0.0.1", connections_per_address=1)
    spoofed = "6.6.6.6, 203.0.113.5"  # the client wrote 6.6.6.6; our proxy, 203.0.113.5
    first = await proxied.connect(headers={"X-Forwarded-For": spoofed})
    await until(lambda: _connection_names(proxied, "(203.0.113.5)"))
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await proxied.connect(headers={"X-Forwarded-For": "203.0.113.5"})
    assert refused.value.status == 503  # one per address, behind the proxy too
    other = await proxied.connect(headers={"X-Forwarded-For": "203.0.113.6"})
    for ws in (first, other):
        await send(ws, {"type": "ping"})
        assert await recv(ws) == {"type": "pong"}

    caplog.set_level(logging.WARNING, "relay")
    direct = await start_relay()  # nobody trusted: the header is the client's word
    await direct.connect(headers={"X-Forwarded-For": "203.0.113.5"})
    await until(lambda: _connection_names(direct, "(127.0.0.1)"))
    assert "not in trusted_proxies" in caplog.text


async def test_foreign_origin_cannot_publish(relay: RunningRelay) -> None:
    url = f"{relay.url}/publish/dialjam:control"
    auth = {"Authorization": f"Bearer {OPERATOR}"}
    # A page elsewhere posting text/plain (no preflight), even with a stolen token.
    foreign = {**auth, "Origin": "https://evil.example", "Content-Type": "text/plain"}
    async with relay.session.post(url, data=b'{"name":"panic"}', headers=foreign) as resp:
        assert resp.status == 403
        answer = await resp.json()
    assert answer["type"] == "error" and answer["code"] == "bad_origin"
    assert relay.state.hub.stats.published == 0
    own = {**auth, "Origin": f"http://127.0.0.1:{relay.port}"}
    for headers in (own, auth):  # a page of the relay, and a client with no Origin
        async with relay.session.post(url, json={"name": "panic"}, headers=headers) as resp:
            assert resp.status == 200
    assert relay.state.errors["bad_origin"] == 1


async def test_foreign_origin_cannot_open_a_websocket(start_relay: StartRelay) -> None:
    relay = await start_relay(public_url="https://jam.example.org")
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await relay.connect(origin="https://evil.example")
    assert refused.value.status == 403
    for origin in ("https://jam.example.org", f"http://127.0.0.1:{relay.port}"):
        ws = await relay.connect(origin=origin)
        await ws.close()
    listed = await start_relay(allowed_origins="https://wall.example.org")
    await (await listed.connect(origin="https://wall.example.org")).close()
    with pytest.raises(aiohttp.WSServerHandshakeError):
        await listed.connect(origin=f"http://127.0.0.1:{listed.port}")  # the list replaces


async def test_unmasked_frame_closes_with_1002(relay: RunningRelay) -> None:
    raw = await RawHttp.open(relay.port)
    await raw.send(upgrade())
    assert (await raw.response())[0] == 101
    await raw.send(_frame(b'{"type":"ping"}'))  # masked, as a client must
    pong = await asyncio.wait_for(raw.reader.readexactly(2 + len(b'{"type":"pong"}')), 5)
    assert pong == protocol.ws_text_frame(b'{"type":"pong"}')
    await raw.send(protocol.ws_text_frame(b'{"type":"ping"}'))  # a server's frame: no mask
    close = await raw.closed()
    assert close[:2] == b"\x88\x02" and int.from_bytes(close[2:4], "big") == 1002
    assert relay.state.errors["unmasked"] == 1
    await until(lambda: _health(relay, lambda h: h["connections"] == 0))


async def test_long_url_gives_404_without_traceback(
    relay: RunningRelay, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for path in ("/" + "a" * 5000, "/" + ("b" * 200 + "/") * 25, "/js/" + "c" * 300 + ".js"):
        async with relay.session.get(relay.url + path) as resp:
            assert resp.status == 404, path[:20]
    async with relay.session.get(relay.url + "/" + "d" * 9000) as resp:
        assert resp.status == 400  # past aiohttp's 8,190-byte request line
    assert relay.state.errors["bad_request"] == 1
    ours = [r for r in caplog.records if r.name != "aiohttp.access"]  # off in python -m relay
    assert not [r for r in ours if r.exc_info or r.levelno >= logging.ERROR]
    assert "Traceback" not in caplog.text
    assert max(len(r.getMessage()) for r in ours) < 300


async def test_a_peer_coming_back_after_each_refusal_is_logged_once_a_minute(
    relay: RunningRelay, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "relay")
    for _ in range(5):
        ws = await relay.connect()
        for frame in ("not json", "[]"):
            await ws.send_str(frame)
            assert (await recv(ws))["type"] == "error"
        await ws.close()
    assert relay.state.errors["bad_json"] == relay.state.errors["not_object"] == 5
    refused = [r for r in caplog.records if "refused a frame" in r.getMessage()]
    assert len(refused) == 2, [r.getMessage() for r in refused]  # one per reason


async def test_steady_flooder_is_closed(start_relay: StartRelay) -> None:
    relay = await start_relay(rate=20, burst=40)
    flood = await relay.connect()
    frame = orjson.dumps({"type": "ping"}).decode()

    async def pour() -> None:
        # About 1,000 frames a second, steadily: the bucket lets one through every
        # 50 ms, so refusals never come "in a row"; they do keep up.
        with contextlib.suppress(ConnectionError):
            while not flood.closed:
                for _ in range(10):
                    await flood.send_str(frame)
                await asyncio.sleep(0.01)

    pouring = asyncio.get_running_loop().create_task(pour())
    try:
        async with asyncio.timeout(30):  # a flooder that is never closed fails here
            while (msg := await flood.receive()).type is aiohttp.WSMsgType.TEXT:
                pass
    finally:
        pouring.cancel()
    assert msg.type is aiohttp.WSMsgType.CLOSE and msg.data == protocol.CLOSE_POLICY
    assert relay.state.errors["rate_limited"] > 250


async def test_a_frame_over_the_hard_cap_is_counted_as_too_large(relay: RunningRelay) -> None:
    # aiohttp's client answers the relay's 1009 with its own close (1000).
    ws = await relay.connect()
    await ws.send_str('{"type":"ping","pad":"' + "x" * 70_000 + '"}')
    msg = await asyncio.wait_for(ws.receive(), 5)
    assert msg.type is aiohttp.WSMsgType.CLOSE and msg.data == protocol.CLOSE_TOO_BIG
    await until(lambda: _health(relay, lambda h: h["errors"].get("too_large") == 1))
    # A raw client that echoes 1009, announcing a 2 GB frame it never sends.
    raw = await RawHttp.open(relay.port)
    await raw.send(upgrade())
    assert (await raw.response())[0] == 101
    await raw.send(bytes([0x81, 0xFF]) + (2**31).to_bytes(8, "big") + b"\x00\x00\x00\x00")
    close = await asyncio.wait_for(raw.reader.readexactly(4), 5)
    assert close == b"\x88\x02" + protocol.CLOSE_TOO_BIG.to_bytes(2, "big")
    await raw.send(_frame(close[2:], opcode=0x8))
    await until(lambda: _health(relay, lambda h: h["errors"].get("too_large") == 2))


async def test_every_page_file_and_answer_carries_the_security_headers(
    relay: RunningRelay,
) -> None:
    for path, status in [
        ("/keypad", 200),
        ("/", 200),
        ("/index.html", 200),
        ("/js/relay.js", 200),
        ("/css/keypad.css", 200),
        ("/nothing-here.js", 404),
        ("/healthz", 200),
    ]:
        async with relay.session.get(relay.url + path) as resp:
            assert resp.status == status, path
            headers = resp.headers
        csp = headers["Content-Security-Policy"]
        assert f"connect-src 'self' ws://127.0.0.1:{relay.port} wss://" in csp, path
        assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "no-referrer"
        assert headers["X-Frame-Options"] == "DENY"
        assert "camera=()" in headers["Permissions-Policy"]


async def test_healthz_and_metrics_show_sockets_and_refusals(relay: RunningRelay) -> None:
    ws = await relay.connect(headers={"Authorization": f"Bearer {BILLBOARD}"})
    with pytest.raises(aiohttp.WSServerHandshakeError):
        await relay.connect(origin="https://evil.example")
    health = await relay.healthz()
    sockets = health["sockets"]
    assert sockets["token_holders"] == 1 and sockets["open"] >= 2
    assert sockets["max"] > sockets["reserved"] == 32 and sockets["per_address"] == 500
    assert sockets["refused"] == {"bad_origin": 1}
    async with relay.session.get(relay.url + "/metrics") as resp:
        text = await resp.text()
    assert 'dialjam_relay_refused_total{reason="bad_origin"} 1.0' in text
    assert "dialjam_relay_sockets_token_holders 1.0" in text
    assert f"dialjam_relay_sockets_max {float(sockets['max'])}" in text
    await ws.close()


async def test_python_m_relay_raises_its_open_files_limit_and_refuses_without_tracebacks() -> None:
    """The real process (uvloop, whose transports are not asyncio's classes)."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard <= 256:
        pytest.skip(f"the hard limit ({hard}) leaves nothing to show")

    def lower() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))

    port = free_port()
    settings = {
        "DIALJAM_CONNECTIONS_PER_ADDRESS": "2",
        "DIALJAM_RESERVED_CONNECTIONS": "1",
        "DIALJAM_HEADER_TIMEOUT_S": "0.5",
    }
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "relay", "--host", "127.0.0.1", "--port", str(port)),
        cwd=ROOT,
        env={**os.environ, **settings},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        preexec_fn=lower,
    )
    assert proc.stderr is not None
    try:
        lines: list[str] = []
        while not any("connections: at most" in line for line in lines):
            raw = await asyncio.wait_for(proc.stderr.readline(), 15)
            assert raw, f"relay exited: {lines}"
            lines.append(raw.decode())
        text = "".join(lines)
        assert f"open files: limit raised from 256 to {hard}" in text
        assert f"connections: at most {max_connections_for(hard)}, 1 of them" in text
        idle = [await RawHttp.open(port) for _ in range(3)]  # two, and one more may wait
        refused = await RawHttp.open(port)
        assert (await refused.closed()).startswith(b"HTTP/1.1 503")
        for sock in idle:
            assert (await sock.closed()).startswith(b"HTTP/1.1 408")
        ws = await RawHttp.open(port)
        await ws.send(upgrade())
        assert (await ws.response())[0] == 101
        await ws.send(protocol.ws_text_frame(b'{"type":"ping"}'))
        assert (await ws.closed())[:4] == b"\x88\x02\x03\xea"
    finally:
        proc.terminate()
        _, stderr = await asyncio.wait_for(proc.communicate(), 15)
    assert "Traceback" not in stderr.decode()


# -- helpers --


async def _sockets(relay: RunningRelay, n: int) -> bool:
    edge = relay.state.edge
    assert edge is not None
    return len(edge.ledger) == n


async def _connection_names(relay: RunningRelay, fragment: str) -> bool:
    return any(fragment in conn.name for conn in relay.state.connections)


async def _health(relay: RunningRelay, check: Any) -> bool:
    return bool(check(await relay.healthz()))
