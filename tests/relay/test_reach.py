"""The start's reachability probe (relay/reach.py) against real sockets on 127.0.0.1:
this relay answering, another relay, some other server, nothing listening, a server
that never answers, a certificate nobody signed, and a name DNS does not know."""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web

from relay.reach import REACH_PATH, probe, probe_target, reach_key
from tests.services import need_tool
from tests.support.processes import free_port
from tests.support.relay import BILLBOARD, RunningRelay, StartRelay

KEY = reach_key(BILLBOARD)

Serve = Callable[..., Awaitable[str]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """Starts a plain web server (not a relay) on a free port; returns its base URL."""
    runners: list[web.AppRunner] = []

    async def start(text: str = "hello", tls: ssl.SSLContext | None = None) -> str:
        async def page(request: web.Request) -> web.Response:
            return web.Response(text=text, headers={"Server": "SomeRouter/1.0"})

        app = web.Application()
        app.router.add_get("/{tail:.*}", page)
        runner = web.AppRunner(app)
        await runner.setup()
        runners.append(runner)
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port, ssl_context=tls).start()
        return f"{'https' if tls else 'http'}://127.0.0.1:{port}"

    yield start
    for runner in runners:
        await runner.cleanup()


async def test_this_relay_at_the_public_address_is_reachable_and_says_how_fast(
    relay: RunningRelay,
) -> None:
    reach = await probe(relay.url + "/", KEY)
    assert reach.ok and reach.outcome == "reachable" and reach.ms is not None
    assert re.fullmatch(r"reachable at http://127\.0\.0\.1:\d+ \(answered in \d+ ms\)", reach.line)


async def test_another_installations_relay_or_another_server_is_not_taken_for_ours(
    start_relay: StartRelay, serve: Serve
) -> None:
    other = await start_relay(billboard_token="someone-elses-billboard-token")
    reach = await probe(other.url, KEY)
    assert reach.outcome == "other_server" and "a different server answered (HTTP 200" in reach.line
    # A server that answers every path, even with a plausible-looking body.
    echo = await serve(text="0" * 64)
    reach = await probe(echo, KEY)
    assert reach.outcome == "other_server"
    assert "a different server answered (HTTP 200 from 'SomeRouter/1.0')" in reach.line


async def test_a_redirect_names_the_address_public_url_should_hold(serve: Serve) -> None:
    target = await serve()

    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPMovedPermanently(target + request.path)

    app = web.Application()
    app.router.add_get("/{tail:.*}", moved)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        reach = await probe(f"http://127.0.0.1:{port}", KEY)
    finally:
        await runner.cleanup()
    assert reach.outcome == "other_server"
    assert f"it redirects (HTTP 301) to {target}; set public_url" in reach.line


async def test_nothing_listening_is_refused_and_the_operator_is_told_about_hairpin_nat() -> None:
    reach = await probe(f"http://127.0.0.1:{free_port()}", KEY)
    assert reach.outcome == "refused" and not reach.ok
    assert "connection refused" in reach.line and "mobile data" in reach.line


async def test_a_server_that_never_answers_is_a_timeout_within_the_bound() -> None:
    with socket.socket() as silent:  # the kernel accepts; nobody ever answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        port = silent.getsockname()[1]
        reach = await asyncio.wait_for(probe(f"http://127.0.0.1:{port}", KEY, timeout_s=0.5), 30)
    assert reach.outcome == "timeout" and "no answer within 0.5 s" in reach.line


async def test_a_certificate_nobody_signed_is_a_tls_failure(serve: Serve, tmp_path: Path) -> None:
    openssl = need_tool("openssl", "apt-get install openssl")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    url = await serve(tls=context)
    reach = await probe(url, KEY)
    assert reach.outcome == "tls" and "TLS certificate refused" in reach.line
    # https to a server that speaks plain http: TLS fails too, and says so.
    plain = await serve()
    reach = await probe(plain.replace("http://", "https://"), KEY)
    assert reach.outcome == "tls", reach.line


async def test_a_name_dns_does_not_know_is_said_to_be_dns() -> None:
    # RFC 6761: .invalid never resolves, here or anywhere.
    reach = await probe("https://dialjam-probe.invalid/", KEY, timeout_s=20)
    assert reach.outcome == "dns", reach.line
    assert "DNS has no address for dialjam-probe.invalid" in reach.line


async def test_the_probe_path_answers_only_a_nonce_and_is_never_cached(
    relay: RunningRelay,
) -> None:
    async with relay.session.get(relay.url + REACH_PATH + "short") as resp:
        assert resp.status == 404
    async with relay.session.get(relay.url + REACH_PATH + "n" * 24) as resp:
        assert resp.status == 200 and resp.headers["Cache-Control"] == "no-store"
        assert len(await resp.text()) == 64


def test_the_probed_base_keeps_a_proxys_path_and_refuses_what_is_not_http() -> None:
    assert probe_target("https://jam.example.org/") == "https://jam.example.org"
    assert probe_target("https://example.org/dialjam/?x=1") == "https://example.org/dialjam"
    assert probe_target("ftp://example.org") is None
    assert probe_target("") is None
