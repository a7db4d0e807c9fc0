"""A caller the operator kicks is hung up by the SIP gateway: the billboard's kick on
``NAME:callers`` reaches the gateway inside the relay (relay/gateways/kicks.py), which
sends its BYE; SIPp, the caller here, answers it and its scenario ends. The operator's
``end_calls`` on ``NAME:control`` ends every call the same way, and the gateway goes on
answering."""

from __future__ import annotations

import asyncio
from pathlib import Path

from relay.app import STATE, health
from tests.support.relay import StartRelay, recv

from .listeners import END_CALLS, billboard_says, kick, operator_says
from .sipp import (
    BYE_FROM_THEM,
    BYE_FROM_US,
    answered,
    pause,
    play,
    run_sipp,
    scenario,
    sip_relay,
)


async def test_a_kick_from_the_billboard_ends_the_sip_call_with_our_bye(
    start_relay: StartRelay, tmp_path: Path
) -> None:
    relay, sub, target = await sip_relay(start_relay)
    steps = answered("8 101") + pause(300) + play("pcap/dtmf_2833_3.pcap", 0) + BYE_FROM_US
    call = asyncio.create_task(run_sipp(tmp_path, scenario("kick", steps), target))
    join = await recv(sub)
    assert join["event"] == "join" and join["source"] == "sip"
    digit = await recv(sub)
    assert digit["event"] == "digit" and digit["digit"] == "3"
    await billboard_says(relay, "dialjam", kick(join["caller"]))
    # Long before the gateway's own silence limit (600 s) could end the call.
    run = await asyncio.wait_for(call, 60)
    assert run.returncode == 0, run.output  # SIPp received our BYE and answered it
    assert health(relay.app[STATE])["sip"]["calls"] == 0


async def test_the_operators_end_calls_ends_every_sip_call_and_the_next_call_is_answered(
    start_relay: StartRelay, tmp_path: Path
) -> None:
    relay, sub, target = await sip_relay(start_relay)
    steps = answered("8 101") + BYE_FROM_US
    (tmp_path / "two").mkdir()
    calls = asyncio.create_task(run_sipp(tmp_path / "two", scenario("end", steps), target, 2))
    joins = [await recv(sub), await recv(sub)]
    assert [j["event"] for j in joins] == ["join", "join"]
    callers = {j["caller"] for j in joins}
    assert len(callers) == 2
    await operator_says(relay, "dialjam", END_CALLS)
    leaves = [await recv(sub), await recv(sub)]
    assert {(e["event"], e["caller"], e["reason"]) for e in leaves} == {
        ("leave", caller, "hangup") for caller in callers
    }
    run = await asyncio.wait_for(calls, 60)
    assert run.returncode == 0, run.output  # both SIPp calls received our BYE and answered
    assert health(relay.app[STATE])["sip"]["calls"] == 0
    # Unlike the relay's shutdown, the gateway still answers: a third call plays.
    (tmp_path / "third").mkdir()
    third = answered("8 101") + BYE_FROM_THEM
    run = await run_sipp(tmp_path / "third", scenario("after", third), target)
    assert run.returncode == 0, run.output
    assert (await recv(sub))["event"] == "join"
    assert (await recv(sub))["reason"] == "hangup"
