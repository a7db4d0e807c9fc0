"""The music down the phone line, end to end: a real billboard linked to a real relay
over its sockets, callers publishing keys as a voice gateway does, and what a call
hears taken from the relay's phone feed as a gateway takes it (tests/support/phone.py).
"""

from __future__ import annotations

import asyncio
import signal
import statistics
from typing import Any

import aiohttp
import numpy as np

from billboard.phone_cues import FIGURES
from tests.support.phone import (
    RATE,
    Caller,
    Listener,
    NoteProbe,
    apart,
    balance_db,
    level_at,
    midi_hz,
    noise_floor,
    onset,
    peaks_hz,
    relay_and_billboard,
    wait_until,
)
from tests.support.processes import STARTUP_S, start_billboard
from tests.support.relay import StartRelay, until

PRESSES = 5
PRESS_EVERY_S = 1.0


async def test_a_caller_hears_their_notes_their_own_part_louder_and_soon_after_the_key(
    start_relay: StartRelay,
) -> None:
    probe = NoteProbe()
    # A loop of 8 bars: no press comes back round while the test listens.
    async with relay_and_billboard(start_relay, probe, loop_bars=8) as (relay, show):
        feed = relay.state.phone
        assert feed is not None
        own = Listener.on(feed, "c-lead")  # the lead's caller, from before they join
        street = Listener.on(feed, "c-street")  # a call holding no track: the shared mix
        lead = await Caller.dial(relay, "c-lead")
        pluck = await Caller.dial(relay, "c-pluck")
        await wait_until(lambda: {t.caller for t in show.scene.tracks} == {"c-lead", "c-pluck"})
        await asyncio.sleep(1.5)  # the track cue has played
        for n in range(PRESSES):
            # Together, so that their notes share each frame and each mix's levelling.
            await asyncio.gather(lead.press("1357"[n % 4]), pluck.press("3"))
            await asyncio.sleep(PRESS_EVERY_S)
        own.stop()
        street.stop()
        health = (await relay.healthz())["phone"]
        figures = show.hud_figures()

    assert str(figures["phone"]).startswith("connected")  # the HUD's and the console's word
    x, shared = own.audio(), street.audio()
    assert own.heard() > 100 and np.max(np.abs(x)) > 0.1  # music, not silence
    lead_ons = [(t, n) for t, n in probe.ons("lead")]
    pluck_ons = [(t, n) for t, n in probe.ons("pluck")]
    assert len(lead_ons) == PRESSES and len(pluck_ons) == PRESSES

    # The spectrum holds every note the caller played, 20 dB over the spectrum's median
    # (a busy machine may skip a stalled frame of a note: never the whole note).
    floor = noise_floor(x)
    for _, note in lead_ons:
        assert level_at(x, midi_hz(note.note)) > 100 * floor, note

    # What stands out in their ear from the first key on is the music played: the
    # strongest peaks lie on the notes' harmonics (the first four).
    played = lead_ons + pluck_ons
    harmonics = [k * midi_hz(n.note) for _, n in played for k in range(1, 5)]
    music = slice(own.sample_at(lead.pressed[0][0]), None)  # from the first key: no cue
    for hz in peaks_hz(x[music]):
        assert min(abs(hz - h) for h in harmonics) < 15, (hz, sorted(harmonics))

    # Their own part stands out more in their ear than in the street's: the lead's
    # fundamentals against the pluck's (each clear of the other's harmonics), in the
    # two mixes (6 dB by default).
    lead_notes = {n.note for _, n in lead_ons}
    pluck_notes = {n.note for _, n in pluck_ons}
    lead_hz, pluck_hz = apart(lead_notes, pluck_notes), apart(pluck_notes, lead_notes)
    assert lead_hz and pluck_hz, (lead_notes, pluck_notes)
    louder = balance_db(x[music], lead_hz, pluck_hz) - balance_db(shared[music], lead_hz, pluck_hz)
    print(f"\nown part in their own ear: {louder:+.1f} dB against the street's mix")
    # 6 dB by default; each mix's own levelling weighs the parts' tails a little
    # differently over time (5-7 dB through the real scheduler in test_phone_out).
    assert 4 < louder < 8, louder

    # The track cue reached the lead's caller, and not the street.
    tone = FIGURES["track"][0][0]
    first_second = slice(0, own.sample_at(lead.pressed[0][0]))
    assert level_at(x[first_second], tone) > 100 * level_at(shared[first_second], tone) + 1e-9

    # From each key's publish to its note: on the speakers (the note handed out by the
    # scheduler) and in the caller's ear (its onset in the audio the relay played out).
    speakers, phone = [], []
    for (pressed, _), (sent, _) in zip(lead.pressed, lead_ons, strict=True):
        speakers.append(sent - pressed)
        start = onset(x, own.sample_at(pressed))
        if start is not None:
            phone.append(own.time_of(start) - pressed)
    assert phone, "no note's onset stood clear of the one before"
    print(
        f"\nkey → note, speakers: median {1000 * statistics.median(speakers):.0f} ms "
        f"(max {1000 * max(speakers):.0f}); caller's phone audio at the relay: median "
        f"{1000 * statistics.median(phone):.0f} ms (max {1000 * max(phone):.0f}, "
        f"{len(phone)} onsets); relay jitter budget {health['budget_ms']:.0f} ms, "
        f"frames waited p50 {health['wait_ms_p50']} ms, underruns {health['underruns']}, "
        f"dropped {health['dropped']}; billboard {figures['phone']}"
    )
    # Generous bounds only: a loaded two-core machine may be slow, never this slow.
    assert all(0 < s < 1.5 for s in speakers), speakers
    assert all(0 < p < 2.0 for p in phone), phone
    assert statistics.median(phone) > statistics.median(speakers)
    assert RATE == 8000


async def summary_line(proc: asyncio.subprocess.Process, fragment: str) -> str:
    """The first line `proc` prints holding `fragment` (its start summary)."""
    assert proc.stdout is not None
    while True:
        line = (await asyncio.wait_for(proc.stdout.readline(), STARTUP_S)).decode()
        assert line, f"the billboard ended before saying {fragment!r}"
        if fragment in line:
            return line


async def test_the_billboard_program_feeds_its_relay_unless_told_not_to() -> None:
    """``python -m billboard`` headless (SDL's dummy drivers): its embedded relay gets
    the phone mixes, and the start summary says where they go; ``--no-phone-music``
    says they are off, and the relay never hears from it."""
    for flags, said, feed in (
        ((), "8 kHz, sent to ws://127.0.0.1:", "connected"),
        (("--no-phone-music",), "off: calls hear only their greeting", "none"),
    ):
        proc, port = await start_billboard(*flags)
        try:
            assert said in await summary_line(proc, "  phone:")
            async with aiohttp.ClientSession() as session:
                if feed == "connected":
                    await until(lambda: _fed(session, port), timeout=STARTUP_S)  # noqa: B023
                else:
                    await asyncio.sleep(1.0)  # ample for a link that would come
                assert (await _phone_health(session, port))["feed"] == feed
        finally:
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 30) == 0
        assert proc.stdout is not None
        stopped = (await proc.stdout.read()).decode()
        if feed == "connected":  # the stop summary counts what went down the line
            line = next(s for s in stopped.splitlines() if "phone music:" in s)
            assert int(line.split("phone music: ")[1].split()[0].replace(",", "")) > 10
        else:
            assert "phone music:" not in stopped


async def _phone_health(session: aiohttp.ClientSession, port: int) -> dict[str, Any]:
    async with session.get(f"http://127.0.0.1:{port}/healthz") as resp:
        health: dict[str, Any] = (await resp.json())["phone"]
        return health


async def _fed(session: aiohttp.ClientSession, port: int) -> bool:
    return int((await _phone_health(session, port))["received"]) > 10
