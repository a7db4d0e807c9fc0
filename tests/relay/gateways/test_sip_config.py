"""The `[sip]` table: read from the installation's file, checked with messages that say
how to fix it, announced to the operator, and run by the relay with its app."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from relay.app import STATE, create_app, health, listen
from relay.config import ConfigError, RelayConfig, SipConfig, load_installation
from relay.runtime import announce

from .sip_messages import invite


def site(tmp_path: Path, table: str) -> SipConfig | None:
    path = tmp_path / "venue.toml"
    path.write_text(f"[sip]\n{table}\n")
    return load_installation(path, env={}).sip


def test_a_sip_table_turns_the_gateway_on_with_its_settings(tmp_path: Path) -> None:
    sip = site(tmp_path, 'port = 5070\nrtp_ports = "30001-30010"\nallow_from = "198.51.100.0/24"')
    assert sip is not None and sip.port == 5070 and sip.allow_from == "198.51.100.0/24"
    assert list(sip.rtp_range()) == [30002, 30004, 30006, 30008, 30010]
    one = site(tmp_path, 'rtp_ports = "20000"')
    assert one is not None and list(one.rtp_range()) == [20000]
    assert site(tmp_path, "enabled = false") is None
    assert load_installation(env={}).sip is None


@pytest.mark.parametrize(
    ("table", "says"),
    [
        ('rtp_ports = "20001"', "no even port"),
        ('rtp_ports = "9-8"', "rtp_ports"),
        ('rtp_ports = "a-b"', "rtp_ports"),
        ('allow_from = "carrier.example"', "allow_from"),
        ('transport = "tls"', "transport"),
        ('refuse = "404"', "refuse"),
        ("max_calls = 0", "max_calls"),
        ("port = 70000", "port"),
        ("answer_after_s = 90", "answer_after_s"),
        ("pseudonym_key = 'x'", "[relay]"),
        ("unknown = 1", "no setting"),
        ('register_registrar = "203.0.113.10"', "register_user"),
    ],
)
def test_a_bad_sip_setting_is_named(tmp_path: Path, table: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        site(tmp_path, table)


def test_the_operator_is_told_where_the_trunk_goes_and_warned_without_an_allow_list() -> None:
    lines: list[str] = []
    announce(RelayConfig(), [], lines.append, sip=SipConfig(public_address="203.0.113.4"))
    text = "\n".join(lines)
    assert "SIP trunk:  udp 0.0.0.0:5060 (contact 203.0.113.4), RTP ports 20000-20999" in text
    assert "allow_from is empty" in text
    lines.clear()
    announce(RelayConfig(), [], lines.append, sip=SipConfig(allow_from="198.51.100.7"))
    assert not any("allow_from" in line for line in lines)


async def test_the_relay_runs_the_gateway_and_its_health_shows_it() -> None:
    config = RelayConfig(host="127.0.0.1", port=0, pseudonym_key="k")
    sip = SipConfig(host="127.0.0.1", port=0, rtp_ports="41000-41009", allow_from="127.0.0.1")
    app = create_app(config, sip=sip)
    runner = await listen(app, "127.0.0.1", 0, shutdown_timeout=2.0)
    try:
        status = health(app[STATE])["sip"]
        assert status["status"] == "listening" and status["calls"] == 0
        host, port = status["listening"].split()[1].rsplit(":", 1)
        loop = asyncio.get_running_loop()
        replies: asyncio.Queue[bytes] = asyncio.Queue()

        class Peer(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: object) -> None:
                replies.put_nowait(data)

        transport, _ = await loop.create_datagram_endpoint(Peer, local_addr=("127.0.0.1", 0))
        try:
            transport.sendto(invite(), (host, int(port)))
            first = await asyncio.wait_for(replies.get(), 10)
            assert first.startswith(b"SIP/2.0 100 Trying")
            assert (await asyncio.wait_for(replies.get(), 10)).startswith(b"SIP/2.0 200 OK")
            assert health(app[STATE])["sip"]["calls"] == 1
        finally:
            transport.close()
    finally:
        await runner.cleanup()
    assert health(app[STATE])["sip"]["status"] == "stopped"
