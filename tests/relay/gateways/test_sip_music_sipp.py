"""The show down a SIP call's line, against SIPp (Debian `sip-tester`) on a real relay:
SIPp places the call with its SDP's audio at a UDP socket the test owns (a phone's RTP
port, recording), a fake billboard feeds ``/phone-audio`` with bundles the real phone
mixer made from notes, and the recorder gets RTP: clean RFC 3550 headers, the bytes of
that caller's own mix (PCMU as sent, PCMA converted), the notes in its spectrum. The
SDP's direction is checked by SIPp itself (a call fails unless the answer matches).
The pure parts: test_sip_music.py (SDP, hold, latching) and test_sip_rtp_out.py."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np

from relay.app import STATE, health
from relay.gateways.sip.rtp_out import ulaw_to_alaw
from tests.support.phone_rtp import (
    LEAD,
    PLUCK,
    TUNE,
    PhoneBillboard,
    RtpRecorder,
    decode,
    heard_frames,
    in_order,
    key_packets,
    level_at,
    melody,
    midi_hz,
    onset,
    pacing,
    render_bundles,
    rms_dbfs,
    sounding,
    stands_out,
    stream_faults,
)
from tests.support.relay import RunningRelay, StartRelay, recv

from .sipp import (
    BYE_FROM_THEM,
    in_dialog,
    invite,
    joins,
    pause,
    recv_with,
    reinvite,
    run_sipp,
    scenario,
    sip_relay,
)
from .sipp import recv as sip_recv


def called(formats: str, recorder: RtpRecorder, answer: str, direction: str = "") -> str:
    """INVITE with the audio at `recorder`, 100, the 200 whose SDP says `answer`, ACK."""
    steps = invite(formats, media_port=recorder.port, direction=direction)
    return steps + sip_recv("100", True) + recv_with("200", f"a={answer}") + in_dialog("ACK", 1)


def sip_health(relay: RunningRelay) -> dict[str, Any]:
    found: dict[str, Any] = health(relay.app[STATE])["sip"]
    return found


async def test_two_callers_hear_the_show_and_the_lead_holder_their_own_part_louder(
    start_relay: StartRelay, tmp_path: Path
) -> None:
    relay, sub, target = await sip_relay(start_relay)
    recorders = {"lead": await RtpRecorder.open(), "other": await RtpRecorder.open()}
    runs = []
    for name, number in (("lead", "+4930555010"), ("other", "+4930555011")):
        steps = called("0 101", recorders[name], "sendrecv") + pause(6000) + BYE_FROM_THEM
        xml = scenario(name, steps).replace("+4930555010", number)
        (tmp_path / name).mkdir()
        runs.append(asyncio.create_task(run_sipp(tmp_path / name, xml, target)))
    by_display = {j["display"]: j["caller"] for j in await joins(sub, runs)}
    callers = {"lead": by_display["…01"], "other": by_display["…11"]}
    bundles = render_bundles(melody(TUNE, 3.0), 3.0, {callers["lead"]: "lead"})
    billboard = PhoneBillboard(relay)
    await billboard.start(bundles)
    for run in await asyncio.gather(*runs):
        assert run.returncode == 0, run.output  # and each 200 said a=sendrecv
    await billboard.close()
    heard = {}
    for name, recorder in recorders.items():
        arrivals = recorder.arrivals
        print(pacing(f"PCMU to the {name} caller", arrivals))
        assert len(arrivals) >= 100, f"{len(arrivals)} packets of 150"
        assert stream_faults(arrivals) == [] and recorder.junk == 0
        assert {a.packet.payload_type for a in arrivals} == {0}
        assert len({a.source for a in arrivals}) == 1  # one port: the call's own
        # The bytes of this caller's mix, in order, as the billboard made them (after
        # the silence sent while the relay's jitter buffer filled).
        music = sounding(arrivals, alaw=False)
        payloads = [a.packet.payload for a in music]
        assert in_order(payloads, heard_frames(bundles, callers[name]))
        other = callers["other" if name == "lead" else "lead"]
        assert not in_order(payloads, heard_frames(bundles, other))  # not the other mix
        assert onset(arrivals, alaw=False) is music[0]  # the tune starts at once
        heard[name] = audio = decode(arrivals, alaw=False)
        assert rms_dbfs(audio) > -35  # music, levelled for the earpiece (−20 dBFS)
        assert stands_out(audio, midi_hz(LEAD)) > 20 and stands_out(audio, midi_hz(PLUCK)) > 20

    def lead_over_pluck(x: np.ndarray) -> float:
        return float(10 * np.log10(level_at(x, midi_hz(LEAD)) / level_at(x, midi_hz(PLUCK))))

    boost = lead_over_pluck(heard["lead"]) - lead_over_pluck(heard["other"])
    print(f"the lead holder's own part, against the shared mix: +{boost:.1f} dB")
    assert boost > 3  # OWN_BOOST_DB is 6
    music = sip_health(relay)["music"]
    assert music["calls"] == 0 and music["sent"] >= sum(len(r.arrivals) for r in recorders.values())
    for recorder in recorders.values():
        recorder.close()


async def test_pcma_gets_a_law_and_the_music_follows_the_callers_own_rtp_to_its_port(
    start_relay: StartRelay, tmp_path: Path
) -> None:
    relay, sub, target = await sip_relay(start_relay)
    sdp_port, nat_port = await RtpRecorder.open(), await RtpRecorder.open()
    steps = called("8 101", sdp_port, "sendrecv") + pause(6000) + BYE_FROM_THEM
    call = asyncio.create_task(run_sipp(tmp_path, scenario("pcma", steps), target))
    (join,) = await joins(sub, [call])
    bundles = render_bundles(melody(TUNE, 8.0), 8.0, {join["caller"]: "pluck"})
    billboard = PhoneBillboard(relay)
    await billboard.start(bundles)
    await sdp_port.wait_for(50, 30)
    # The caller's phone, seen through a NAT: its RTP (a key) comes from another port,
    # sent back to where the music comes from (symmetric RTP); the music follows it.
    ours = sdp_port.arrivals[0].source
    for packet in key_packets("5", 101):
        nat_port.send(packet, ours)
    digit = await recv(sub, 60)
    assert (digit["event"], digit["digit"]) == ("digit", "5")
    await nat_port.wait_for(50, 30)
    run = await call
    assert run.returncode == 0, run.output
    await billboard.close()
    before, after = sdp_port.arrivals, nat_port.arrivals
    print(pacing("PCMA to the SDP's port", before))
    print(pacing("PCMA to the caller's own port", after))
    assert len(after) >= 50
    # One stream, moved: its sequence goes on from the last packet the SDP's port got.
    assert stream_faults(before + after) == []
    assert {a.packet.payload_type for a in before + after} == {8}
    assert {a.source for a in before + after} == {ours}
    frames = [ulaw_to_alaw(f) for f in heard_frames(bundles, join["caller"])]
    music = sounding(before + after, alaw=True)
    assert in_order([a.packet.payload for a in music], frames)
    audio = decode(before + after, alaw=True)
    assert rms_dbfs(audio) > -35 and stands_out(audio, midi_hz(PLUCK)) > 20
    sdp_port.close()
    nat_port.close()


async def test_a_caller_on_hold_hears_nothing_until_its_reinvite_takes_it_off_hold(
    start_relay: StartRelay, tmp_path: Path
) -> None:
    relay, sub, target = await sip_relay(start_relay)
    recorder = await RtpRecorder.open()
    steps = called("0 101", recorder, "recvonly", direction="sendonly") + pause(4000)
    steps += reinvite(2, "0 101", media_port=recorder.port) + sip_recv("100", True)
    steps += recv_with("200", "a=sendrecv") + in_dialog("ACK", 2) + pause(2500)
    steps += in_dialog("BYE", 3) + sip_recv("200")
    call = asyncio.create_task(run_sipp(tmp_path, scenario("hold", steps), target))
    await joins(sub, [call])
    billboard = PhoneBillboard(relay)
    await billboard.start(render_bundles(melody(TUNE, 8.0), 8.0, {}))
    await asyncio.sleep(1.0)  # the feed plays; SIPp holds for 4 s after its ACK
    assert billboard.sent >= 25  # music there was, for 0.5 s at least
    assert recorder.arrivals == [] and sip_health(relay)["music"]["sent"] == 0
    run = await call
    assert run.returncode == 0, run.output  # the answers said recvonly, then sendrecv
    await billboard.close()
    print(pacing("PCMU after the hold", recorder.arrivals))
    assert len(recorder.arrivals) >= 50 and stream_faults(recorder.arrivals) == []
    assert stands_out(decode(recorder.arrivals, alaw=False), midi_hz(LEAD)) > 20
    recorder.close()


async def test_without_phone_music_the_answer_is_recvonly_and_nothing_is_sent(
    start_relay: StartRelay, tmp_path: Path
) -> None:
    relay, _sub, target = await sip_relay(start_relay, phone_music=False)
    recorder = await RtpRecorder.open()
    steps = called("0 101", recorder, "recvonly") + pause(1000) + BYE_FROM_THEM
    run = await run_sipp(tmp_path, scenario("off", steps), target)
    assert run.returncode == 0, run.output
    assert recorder.arrivals == [] and sip_health(relay)["music"] is None
    recorder.close()
