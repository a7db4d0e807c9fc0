"""Issue 16's proof, end to end through two real gateways: a real billboard (headless:
its engine, scheduler and phone threads) linked to a real relay that answers Twilio
and SIP; a Twilio call (its documented stream messages: ``dtmf`` keys in, ``media``
out) and a SIP call placed by SIPp whose SDP puts its audio at an RTP recorder (keys
sent from there as RFC 4733 events, as a phone behind its port does). Each caller
hears non-silent audio whose spectrum holds the notes they played, their own part
louder in their own ear than in the other's; and the delay from each key to its note
in the caller's audio is printed beside the speakers' figure (bounds only: a loaded
two-core machine)."""

from __future__ import annotations

import asyncio
import random
import statistics
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from billboard.show import Show
from relay.app import STATE, health
from relay.config import SipConfig, TwilioConfig
from tests.support.phone import (
    FRAME,
    RATE,
    NoteProbe,
    apart,
    balance_db,
    level_at,
    midi_hz,
    noise_floor,
    onset,
    relay_and_billboard,
    wait_until,
)
from tests.support.phone_rtp import RtpRecorder, decode, key_packets
from tests.support.relay import StartRelay
from tests.support.twilio import KEY, PUBLIC, TOKEN, TwilioCall, samples

from .listeners import subscribe
from .sipp import (
    BYE_FROM_THEM,
    in_dialog,
    invite,
    joins,
    pause,
    recv_with,
    run_sipp,
    scenario,
)
from .sipp import recv as sip_recv

PRESSES = 5
PRESS_EVERY_S = 1.0
Audio = npt.NDArray[np.float64]


@dataclass
class Heard:
    """One call's audio at its far end, each 20 ms frame with when it arrived."""

    audio: Audio
    arrived: list[float]  # the loop's clock (time.monotonic), one per frame

    def sample_at(self, moment: float) -> int:
        for n, at in enumerate(self.arrived):
            if at >= moment:
                return n * FRAME
        return len(self.arrived) * FRAME

    def time_of(self, sample: int) -> float:
        return self.arrived[sample // FRAME] + (sample % FRAME) / RATE


def holders(show: Show) -> dict[str, str]:
    """Who holds which track on the billboard."""
    return {t.caller: t.name for t in show.scene.tracks if t.caller is not None}


def delays(heard: Heard, pressed: list[float]) -> list[float]:
    """From each key to the onset of its note in `heard` (keys whose note rang into
    the next are skipped by `onset`)."""
    found = []
    for moment in pressed:
        start = onset(heard.audio, heard.sample_at(moment))
        if start is not None:
            found.append(heard.time_of(start) - moment)
    return found


async def test_a_twilio_and_a_sip_caller_hear_their_own_notes_louder_soon_after_their_keys(
    start_relay: StartRelay, tmp_path: Path
) -> None:
    probe = NoteProbe()
    base = random.randrange(30000, 60000, 2)
    settings = {
        "public_url": PUBLIC,
        "pseudonym_key": KEY,
        "twilio": TwilioConfig(auth_token=TOKEN),
        "sip": SipConfig(host="127.0.0.1", port=0, rtp_ports=f"{base}-{base + 19}", silence_s=600),
    }
    # A loop of 8 bars: no press comes back round while the test listens.
    async with relay_and_billboard(start_relay, probe, settings, loop_bars=8) as (relay, show):
        loop = asyncio.get_running_loop()
        twilio = await TwilioCall(relay).dial()  # the first to join: the lead
        await wait_until(lambda: holders(show) == {twilio.caller: "lead"})
        sub = await subscribe(relay)  # from here: the SIP call's join
        recorder = await RtpRecorder.open()
        host, _, port = health(relay.app[STATE])["sip"]["listening"].split()[1].rpartition(":")
        steps = invite("0 101", media_port=recorder.port) + sip_recv("100", True)
        steps += recv_with("200", "a=sendrecv") + in_dialog("ACK", 1)
        steps += pause(round(1000 * (4 + PRESSES * PRESS_EVERY_S))) + BYE_FROM_THEM
        call = loop.create_task(run_sipp(tmp_path, scenario("e2e", steps), (host, int(port))))
        (joined,) = await joins(sub, [call])
        assert joined["source"] == "sip"
        sip_caller = joined["caller"]
        await wait_until(lambda: len(holders(show)) == 2)
        assert holders(show) == {twilio.caller: "lead", sip_caller: "pluck"}
        await recorder.wait_for(25, 30)
        gateway = recorder.arrivals[0].source  # the call's RTP port: keys go back there
        await asyncio.sleep(1.5)  # the track cues have played
        pressed: dict[str, list[float]] = {"lead": [], "pluck": []}
        for n in range(PRESSES):
            # Together, so their notes share each frame and each mix's levelling.
            pressed["lead"].append(loop.time())
            await twilio.dtmf("1357"[n % 4])
            pressed["pluck"].append(loop.time())
            for packet in key_packets("3", 101, press=n):
                recorder.send(packet, gateway)
            await asyncio.sleep(PRESS_EVERY_S)
        run = await call
        assert run.returncode == 0, run.output
        await twilio.stop()
        phone = (await relay.healthz())["phone"]

    lead_ons, pluck_ons = probe.ons("lead"), probe.ons("pluck")
    assert len(lead_ons) == PRESSES and len(pluck_ons) == PRESSES, (lead_ons, pluck_ons)
    ears = {
        "lead": Heard(samples(twilio.audio), list(twilio.arrivals)),
        "pluck": Heard(decode(recorder.arrivals, alaw=False), [a.at for a in recorder.arrivals]),
    }
    first = min(pressed["lead"][0], pressed["pluck"][0])
    music = {part: ear.audio[ear.sample_at(first) :] for part, ear in ears.items()}
    for part, ons in (("lead", lead_ons), ("pluck", pluck_ons)):
        x = music[part]
        assert np.max(np.abs(x)) > 0.1, part  # music, not silence
        floor = noise_floor(x)
        for _, note in ons:  # every note the caller played, 20 dB over the median bin
            assert level_at(x, midi_hz(note.note)) > 100 * floor, (part, note)

    # Each caller's own part stands out more in their own ear than in the other's: the
    # lead's fundamentals against the pluck's (each clear of the other's harmonics).
    lead_notes, pluck_notes = {n.note for _, n in lead_ons}, {n.note for _, n in pluck_ons}
    lead_hz, pluck_hz = apart(lead_notes, pluck_notes), apart(pluck_notes, lead_notes)
    assert lead_hz and pluck_hz, (lead_notes, pluck_notes)
    twilio_ear = balance_db(music["lead"], lead_hz, pluck_hz)
    sip_ear = balance_db(music["pluck"], lead_hz, pluck_hz)
    print(
        f"\nlead over pluck: {twilio_ear:+.1f} dB in the Twilio caller's ear (the lead's), "
        f"{sip_ear:+.1f} dB in the SIP caller's (the pluck's): {twilio_ear - sip_ear:.1f} dB "
        "apart (each own part +6 dB)"
    )
    assert twilio_ear - sip_ear > 6, (twilio_ear, sip_ear)

    # From each key to its note: on the speakers (the note handed out by the scheduler)
    # and in the caller's ear (its onset in what reached the far end of the call).
    lines = []
    for part, ons, gateway_name in (("lead", lead_ons, "Twilio"), ("pluck", pluck_ons, "SIP")):
        speakers = [sent - at for at, (sent, _) in zip(pressed[part], ons, strict=True)]
        heard = delays(ears[part], pressed[part])
        assert heard, f"no {part} onset stood clear of the note before"
        assert all(0 < s < 1.5 for s in speakers), speakers
        assert all(0 < h < 2.0 for h in heard), heard
        assert statistics.median(heard) > statistics.median(speakers)
        lines.append(
            f"{gateway_name} caller: key → note on the speakers median "
            f"{1000 * statistics.median(speakers):.0f} ms (max {1000 * max(speakers):.0f}), "
            f"in their ear median {1000 * statistics.median(heard):.0f} ms "
            f"(max {1000 * max(heard):.0f}, {len(heard)} onsets)"
        )
    print("\n" + "\n".join(lines))
    print(
        f"relay jitter budget {phone['budget_ms']:.0f} ms, frames waited p50/p99 "
        f"{phone['wait_ms_p50']}/{phone['wait_ms_p99']} ms, underruns {phone['underruns']}, "
        f"dropped {phone['dropped']}"
    )
    recorder.close()
