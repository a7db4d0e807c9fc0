"""A caller the operator kicks is hung up by the SIP gateway: the billboard's kick on
``NAME:callers`` reaches the gateway inside the relay (relay/gateways/kicks.py), which
sends its BYE; SIPp, the caller here, answers it and its scenario ends."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

from relay.app import STATE, health
from relay.config import SipConfig
from tests.support.relay import StartRelay, recv

from .listeners import billboard_says, kick, subscribe
from .sipp import BYE_FROM_US, answered, pause, play, run_sipp, scenario


async def test_a_kick_from_the_billboard_ends_the_sip_call_with_our_bye(
    start_relay: StartRelay, tmp_path: Path
) -> None:
    base = random.randrange(30000, 60000, 2)
    sip = SipConfig(host="127.0.0.1", port=0, rtp_ports=f"{base}-{base + 19}", silence_s=600.0)
    relay = await start_relay(sip=sip)
    sub = await subscribe(relay)
    host, _, port = health(relay.app[STATE])["sip"]["listening"].split()[1].rpartition(":")
    steps = answered("8 101") + pause(300) + play("pcap/dtmf_2833_3.pcap", 0) + BYE_FROM_US
    call = asyncio.create_task(run_sipp(tmp_path, scenario("kick", steps), (host, int(port))))
    join = await recv(sub)
    assert join["event"] == "join" and join["source"] == "sip"
    digit = await recv(sub)
    assert digit["event"] == "digit" and digit["digit"] == "3"
    await billboard_says(relay, "dialjam", kick(join["caller"]))
    # Long before the gateway's own silence limit (600 s) could end the call.
    run = await asyncio.wait_for(call, 60)
    assert run.returncode == 0, run.output  # SIPp received our BYE and answered it
    assert health(relay.app[STATE])["sip"]["calls"] == 0
