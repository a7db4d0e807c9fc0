"""The relay's edge without I/O: who a client is behind proxies, the ledger of
connections per address and in all, the mask check, the header watch, origins, the
security headers, refusal windows and log budgets, and the settings that bound them.
A real relay facing real clients at its edge is tested in test_edge.py."""

from __future__ import annotations

from typing import Any

import pytest

from relay.config import ConfigError, RelayConfig, validate
from relay.edge import (
    HeadWatch,
    Ledger,
    Limits,
    client_address,
    counted_as,
    max_connections_for,
    origin_allowed,
    parse_networks,
    parse_origins,
    security_headers,
)
from relay.protocol import MaskCheck
from relay.ratelimit import LogOnce, RefusalWindow
from tests.support.websocket import client_frame


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


def test_mask_check_follows_frames_of_every_length_split_anywhere() -> None:
    stream = b"".join(client_frame(b"x" * n) for n in (0, 1, 125, 126, 300, 65535, 65536))
    stream += client_frame(b"", opcode=0x9)  # a ping
    for step in (1, 2, 3, 7, 1000, len(stream)):
        check = MaskCheck()
        assert all(check.feed(stream[i : i + step]) for i in range(0, len(stream), step))
    bad = stream + client_frame(b"hello", masked=False)
    for step in (1, 5, len(bad)):
        check = MaskCheck()
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
    limiter = LogOnce(every_s=60.0, burst=3)
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
