"""The SIP gateway's real adapter (real UDP sockets on 127.0.0.1) against SIPp, an
independent SIP implementation (Debian `sip-tester`): its RFC 2833 captures, its own
``play_dtmf``, key tones in PCMU audio, a late ACK, CANCEL, a retransmitted INVITE and
a BYE from us. Every digit arrives once and in order; every call is cleaned up (its
caller leaves, its RTP port goes back to the pool). The user agent's rules are tested
without I/O in test_sip_ua.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from relay.gateways.sip.gateway import SipGateway

from .sipp import (
    BYE_FROM_THEM,
    BYE_FROM_US,
    Published,
    answered,
    cleaned_up,
    in_dialog,
    invite,
    pause,
    play,
    play_dtmf,
    recv,
    run_sipp,
    scenario,
    started,
    tone_pcap,
)


@pytest.fixture
async def sip() -> AsyncIterator[tuple[SipGateway, Published]]:
    gateway, published = await started()
    yield gateway, published
    await gateway.stop()


async def test_sipps_rfc2833_captures_become_each_digit_once_in_order(
    sip: tuple[SipGateway, Published], tmp_path: Path
) -> None:
    gateway, published = sip
    steps = [answered("8 101"), pause(300)]
    steps += [play(f"pcap/dtmf_2833_{key}.pcap") for key in ("1", "5", "pound", "star", "0")]
    run = await run_sipp(tmp_path, scenario("rfc2833", *steps, BYE_FROM_THEM), gateway.address)
    assert run.returncode == 0, run.output
    assert published.digits() == "15#*0"
    (join,) = published.of("join")
    assert join["source"] == "sip" and join["display"] == "…01"
    assert all(e["caller"] == join["caller"] for e in published.events)
    assert published.of("leave")[0]["reason"] == "hangup"
    cleaned_up(gateway, published)


async def test_sipps_play_dtmf_on_payload_type_96_is_heard(
    sip: tuple[SipGateway, Published], tmp_path: Path
) -> None:
    gateway, published = sip
    keys = play_dtmf("4#2*", 2500)
    xml = scenario("play_dtmf", answered("0 96"), pause(300), keys, BYE_FROM_THEM)
    run = await run_sipp(tmp_path, xml, gateway.address)
    assert run.returncode == 0, run.output
    assert published.digits() == "4#2*"
    cleaned_up(gateway, published)


async def test_key_tones_in_pcmu_audio_alone_are_heard(
    sip: tuple[SipGateway, Published], tmp_path: Path
) -> None:
    gateway, published = sip
    tone_pcap(tmp_path / "tones.pcap", "2580*#")
    xml = scenario("inband", answered("0"), play("tones.pcap", 1800), BYE_FROM_THEM)
    run = await run_sipp(tmp_path, xml, gateway.address)
    assert run.returncode == 0, run.output
    assert published.digits() == "2580*#"
    cleaned_up(gateway, published)


async def test_a_late_ack_is_waited_for_while_the_200_is_sent_again(
    sip: tuple[SipGateway, Published], tmp_path: Path
) -> None:
    gateway, published = sip
    steps = invite("8 101") + recv("100", True) + recv("200") + pause(1800)
    steps += in_dialog("ACK", 1) + pause(200) + play("pcap/dtmf_2833_3.pcap")
    run = await run_sipp(tmp_path, scenario("late_ack", steps, BYE_FROM_THEM), gateway.address)
    assert run.returncode == 0, run.output
    assert published.digits() == "3"
    assert gateway.ua.counts["answered"] == 1
    cleaned_up(gateway, published)


async def test_cancel_while_ringing_gets_200_then_487_and_nobody_joins(tmp_path: Path) -> None:
    gateway, published = await started(answer_after_s=3.0)
    try:
        branch = "z9hG4bK-cancel-[call_number]"
        steps = invite("8 101", branch=branch) + recv("100", True) + recv("180")
        steps += in_dialog("CANCEL", 1, branch).replace("[peer_tag_param]", "")
        steps += recv("200") + recv("487") + in_dialog("ACK", 1, branch)
        run = await run_sipp(tmp_path, scenario("cancel", steps), gateway.address)
        assert run.returncode == 0, run.output
        assert published.events == []
        await asyncio.sleep(3.5)  # past the moment it would have been answered
        assert published.events == [] and gateway.ua.counts["answered"] == 0
        cleaned_up(gateway, published)
    finally:
        await gateway.stop()


async def test_a_retransmitted_invite_is_answered_from_the_cache_and_joins_once(
    tmp_path: Path,
) -> None:
    gateway, published = await started(answer_after_s=0.3)
    try:
        # SIPp answers each repeated 180 with its INVITE again, and we answer each from
        # the cache, until the 200 ends the exchange.
        again = invite("8 101", branch="z9hG4bK-again-[call_number]", retrans=False)
        steps = again + recv("100", True) + recv("180") + again + recv("180", True)
        steps += recv("200") + in_dialog("ACK", 1) + pause(300) + play("pcap/dtmf_2833_9.pcap")
        run = await run_sipp(tmp_path, scenario("again", steps, BYE_FROM_THEM), gateway.address)
        assert run.returncode == 0, run.output
        assert gateway.ua.counts["retransmitted"] >= 1
        assert len(published.of("join")) == 1 and published.digits() == "9"
        cleaned_up(gateway, published)
    finally:
        await gateway.stop()


async def test_a_kicked_caller_gets_our_bye_and_leaves(
    sip: tuple[SipGateway, Published], tmp_path: Path
) -> None:
    gateway, published = sip
    steps = answered("8 101") + pause(300) + play("pcap/dtmf_2833_7.pcap", 0) + BYE_FROM_US
    task = asyncio.create_task(run_sipp(tmp_path, scenario("kicked", steps), gateway.address))
    for _ in range(600):
        if published.of("digit"):
            break
        await asyncio.sleep(0.05)
    (join,) = published.of("join")
    assert gateway.hang_up(join["caller"]) == 1
    run = await task
    assert run.returncode == 0, run.output
    assert published.digits() == "7"
    assert published.of("leave")[0]["reason"] == "closed"
    assert not gateway.ua.client  # our BYE was answered
    cleaned_up(gateway, published)


async def test_shutdown_ends_every_call_with_a_bye(tmp_path: Path) -> None:
    gateway, published = await started()
    steps = answered("8 101") + BYE_FROM_US
    task = asyncio.create_task(run_sipp(tmp_path, scenario("shutdown", steps), gateway.address))
    for _ in range(600):
        if published.of("join"):
            break
        await asyncio.sleep(0.05)
    await gateway.stop()
    run = await task
    assert run.returncode == 0, run.output
    assert gateway.ua.counts["bye_sent"] == 1 and not gateway.ua.client
    cleaned_up(gateway, published)


async def test_over_tcp_the_keys_arrive_and_our_bye_goes_back_on_the_connection(
    tmp_path: Path,
) -> None:
    gateway, published = await started(transport="tcp")
    try:
        steps = answered("8 101") + pause(300) + play("pcap/dtmf_2833_4.pcap")
        steps += play("pcap/dtmf_2833_2.pcap", 0) + BYE_FROM_US
        xml = scenario("tcp", steps)
        task = asyncio.create_task(run_sipp(tmp_path, xml, gateway.address, transport="t1"))
        for _ in range(600):
            if len(published.of("digit")) == 2 or task.done():
                break
            await asyncio.sleep(0.05)
        if not published.of("join"):  # SIPp never called: say what it said
            run = await task
            raise AssertionError(f"no call arrived; SIPp exited {run.returncode}:\n{run.output}")
        assert gateway.hang_up(published.of("join")[0]["caller"]) == 1
        run = await task
        assert run.returncode == 0, run.output
        assert published.digits() == "42" and not gateway.ua.client
        cleaned_up(gateway, published)
    finally:
        await gateway.stop()
