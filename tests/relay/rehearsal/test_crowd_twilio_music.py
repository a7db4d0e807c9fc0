"""The rehearsal crowd's Twilio callers take the phone music the relay sends back: a
fake billboard feeds /phone-audio on a real relay, and the crowd's report counts the
media its callers got (and echoes their marks as Twilio does, so nothing is cleared)."""

from __future__ import annotations

import dataclasses

from relay.config import TwilioConfig
from relay.phone_audio import FRAME_BYTES, encode_bundle
from relay.rehearsal.crowd import run_crowd
from relay.rehearsal.plan import CrowdOptions
from tests.support.phone_rtp import PhoneBillboard
from tests.support.relay import StartRelay
from tests.support.twilio import PUBLIC, TOKEN

CROWD = CrowdOptions(callers=3, rate=2.0, duration=2.5, ramp=0.3, seed=3, drain=2.0, style="steady")


async def test_the_crowds_twilio_callers_take_and_count_the_music_sent_back(
    start_relay: StartRelay,
) -> None:
    relay = await start_relay(public_url=PUBLIC, twilio=TwilioConfig(auth_token=TOKEN))
    mix = b"\x30" * FRAME_BYTES
    bundles = [encode_bundle(seq, [mix], {}) for seq in range(1, 1001)]  # 20 s at most
    feeding = PhoneBillboard(relay)
    await feeding.start(bundles)
    try:
        options = dataclasses.replace(
            CROWD, via="twilio", relay=relay.url, public_url=PUBLIC, twilio_token=TOKEN
        )
        report = await run_crowd(options)
    finally:
        await feeding.close()
    assert report.ok and report.errors == {}, report.render()
    # Three callers in a call for ~2.5 s each: well over a second of music each.
    assert report.music_frames is not None and report.music_frames > 3 * 50, report.render()
    assert "music " in report.render()
    health = await relay.healthz()
    assert health["twilio"]["marks_echoed"] >= 3, health["twilio"]
