"""Listening to what a call was sent, and a fake billboard that sends it: μ-law to
samples, the level of a tone in a spectrum and the strongest peaks; bundles of the
real `PhoneMixer`'s mixes rendered from notes, fed over ``/phone-audio`` every 20 ms
with the billboard token, as the billboard does."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path

import aiohttp
import numpy as np
import numpy.typing as npt

from billboard.engine.events import NoteOff, NoteOn
from billboard.engine.tracks import DEFAULT_TRACKS
from billboard.phone_mix import FRAME, RATE, PhoneMixer
from billboard.samples import load_sample_sets
from relay.gateways.dtmf import ulaw_decode
from relay.phone_audio import FRAME_S, encode_bundle

from .relay import BILLBOARD, RunningRelay

SOUNDS = Path(__file__).resolve().parents[2] / "sounds"
Audio = npt.NDArray[np.float64]


def midi_hz(note: float) -> float:
    return float(440.0 * 2.0 ** ((note - 69) / 12))


def samples(ulaw: bytes) -> Audio:
    """μ-law bytes as samples within ±1."""
    return ulaw_decode(ulaw).astype(np.float64) / 32768


def rms_dbfs(x: Audio) -> float:
    return float(10 * np.log10(np.mean(x**2) + 1e-20))


def spectrum(x: Audio, rate: int = RATE) -> tuple[Audio, Audio]:
    power = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2
    return np.fft.rfftfreq(len(x), 1 / rate), power


def level_at(x: Audio, hz: float, width: float = 15.0, rate: int = RATE) -> float:
    """The power within `width` Hz of `hz`."""
    freqs, power = spectrum(x, rate)
    return float(power[np.abs(freqs - hz) < width].sum())


def peaks(x: Audio, n: int = 5, rate: int = RATE, apart: float = 40.0) -> list[float]:
    """The `n` strongest spectral peaks (Hz), strongest first, at least `apart` apart."""
    freqs, power = spectrum(x, rate)
    found: list[float] = []
    for i in np.argsort(power)[::-1]:
        if all(abs(freqs[i] - f) >= apart for f in found):
            found.append(float(freqs[i]))
            if len(found) == n:
                break
    return found


def first_sound(frames: Sequence[bytes], above_dbfs: float = -50.0) -> int | None:
    """The index of the first 20 ms frame louder than `above_dbfs` RMS, if any."""
    for i, frame in enumerate(frames):
        if rms_dbfs(samples(frame)) > above_dbfs:
            return i
    return None


def percentiles_ms(times: Sequence[float]) -> tuple[float, float]:
    """The p50 and p99 of the gaps between `times` (seconds), in ms."""
    gaps = np.diff(np.asarray(times)) * 1000
    if not len(gaps):
        return (0.0, 0.0)
    return (float(np.percentile(gaps, 50)), float(np.percentile(gaps, 99)))


def notes_on(
    track: str, note: int, seconds: float, every: float = 0.25, start: float = 0.0
) -> list[NoteOn | NoteOff]:
    """`track` striking `note` every `every` s from `start`, each held for most of
    the gap."""
    out: list[NoteOn | NoteOff] = []
    for n in range(int((seconds - start) / every)):
        t = start + n * every
        out += [NoteOn(t, n, track, 0, note, 110), NoteOff(t + every * 0.8, n, track, 0, note)]
    return out


def render_bundles(
    notes: Sequence[NoteOn | NoteOff], seconds: float, holders: Mapping[str, str]
) -> list[bytes]:
    """The bundles the billboard would send for `notes`: each 20 ms, the shared mix and
    one mix per held track, `holders` (caller id: track) naming who hears which."""
    mixer = PhoneMixer(load_sample_sets(SOUNDS), DEFAULT_TRACKS)
    for note in sorted(notes, key=lambda n: n.time):
        if isinstance(note, NoteOn):
            mixer.note_on(note)
        else:
            mixer.note_off(note)
    tracks = sorted(set(holders.values()))
    callers = {caller: 1 + tracks.index(track) for caller, track in holders.items()}
    bundles = []
    for seq in range(round(seconds * RATE / FRAME)):
        frame = mixer.frame(seq * FRAME / RATE, tracks)
        mixes = [frame.mixes[None].ulaw] + [frame.mixes[t].ulaw for t in tracks]
        bundles.append(encode_bundle(seq + 1, mixes, callers))
    return bundles


async def feed_billboard(
    relay: RunningRelay, bundles: Sequence[bytes], sent_at: list[float] | None = None
) -> int:
    """Send `bundles` over /phone-audio one per 20 ms, paced by deadlines on the loop's
    clock (a late one does not push the rest later); returns how many were sent, and
    notes when each went (the loop's clock) in `sent_at`."""
    ws = await relay.connect("/phone-audio", headers={"Authorization": f"Bearer {BILLBOARD}"})
    loop = asyncio.get_running_loop()
    began, sent = loop.time(), 0
    try:
        for bundle in bundles:
            await asyncio.sleep(max(0.0, began + sent * FRAME_S - loop.time()))
            await ws.send_bytes(bundle)
            if sent_at is not None:
                sent_at.append(loop.time())
            sent += 1
    except (aiohttp.ClientError, ConnectionError):
        pass
    finally:
        await ws.close()
    return sent
