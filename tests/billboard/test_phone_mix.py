"""The phone mix: the speakers' notes mixed again for a phone's earpiece, 20 ms of
8 kHz mono at a time, as PCM and μ-law; one shared mix and one per track-holder (their
own part louder); a caller's cues in their mix alone. Pure: frames are asked for with
the time they start, no clock runs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from billboard.engine.events import NoteOff, NoteOn
from billboard.engine.tracks import DEFAULT_TRACKS, TrackSpec
from billboard.phone_cues import CUE_SOUNDS, FIGURES
from billboard.phone_mix import (
    CEILING_DBFS,
    FRAME,
    OWN_BOOST_DB,
    RATE,
    TARGET_DBFS,
    PhoneFrame,
    PhoneMixer,
    PhoneSounds,
    encode,
)
from billboard.samples import SampleSet, load_sample_sets
from relay.gateways.dtmf import ulaw_decode, ulaw_encode
from tests.billboard.audio import midi_hz

SOUNDS = Path(__file__).resolve().parents[2] / "sounds"
TRACKS: tuple[TrackSpec, ...] = tuple(DEFAULT_TRACKS)
SECONDS_PER_FRAME = FRAME / RATE


@pytest.fixture(scope="module")
def sets() -> dict[str, SampleSet]:
    return load_sample_sets(SOUNDS)


def on(time: float, track: str, note: int, velocity: int = 110) -> NoteOn:
    return NoteOn(time=time, step=0, track=track, channel=0, note=note, velocity=velocity)


def off(time: float, track: str, note: int) -> NoteOff:
    return NoteOff(time=time, step=0, track=track, channel=0, note=note)


def tune(lead: int = 76, pluck: int = 67, seconds: float = 4.0) -> list[NoteOn | NoteOff]:
    """The lead repeating `lead` and the pluck `pluck`, an 8th apart, each note a 16th
    long, as the scheduler would hand them out."""
    notes: list[NoteOn | NoteOff] = []
    step = 0.125
    for n in range(int(seconds / step)):
        t = n * step
        track, note = ("lead", lead) if n % 2 == 0 else ("pluck", pluck)
        notes += [on(t, track, note), off(t + 0.1, track, note)]
    return notes


def run(
    sets: dict[str, SampleSet],
    notes: Sequence[NoteOn | NoteOff],
    seconds: float,
    cues: Sequence[tuple[str, str, float]] = (),
    own_boost_db: float = OWN_BOOST_DB,
) -> list[PhoneFrame]:
    mixer = PhoneMixer(sets, TRACKS, own_boost_db)
    for note in notes:
        if isinstance(note, NoteOn):
            mixer.note_on(note)
        else:
            mixer.note_off(note)
    for caller, kind, at in cues:
        mixer.cue(caller, kind, at)  # type: ignore[arg-type]
    return [mixer.frame(n * SECONDS_PER_FRAME) for n in range(round(seconds / SECONDS_PER_FRAME))]


def audio(frames: Sequence[PhoneFrame], caller: str, track: str | None) -> np.ndarray:
    """What `caller` (holding `track`) hears, decoded from the μ-law they are sent."""
    data = b"".join(f.for_caller(caller, track).ulaw for f in frames)
    return ulaw_decode(data).astype(np.float64) / 32768


def spectrum(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    power = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2
    return np.fft.rfftfreq(len(x), 1 / RATE), power


def level_at(x: np.ndarray, hz: float, width: float = 15.0) -> float:
    freqs, power = spectrum(x)
    return float(power[np.abs(freqs - hz) < width].sum())


def db(ratio: float) -> float:
    return float(10 * np.log10(ratio))


def test_a_frame_is_20_ms_of_8_khz_mono_as_pcm_and_as_the_same_audio_in_mu_law(
    sets: dict[str, SampleSet],
) -> None:
    frame = run(sets, tune(), 0.5)[-1]
    shared = frame.mixes[None]
    assert len(shared.ulaw) == FRAME and len(shared.pcm16) == 2 * FRAME
    pcm = np.frombuffer(shared.pcm16, dtype="<i2").astype(float)
    assert np.max(np.abs(pcm)) > 1000  # music, not silence
    decoded = ulaw_decode(shared.ulaw).astype(float)
    assert np.max(np.abs(decoded - pcm)) <= np.max(np.abs(pcm)) / 16  # μ-law's steps


def test_the_mix_holds_the_fundamentals_of_the_notes_played(sets: dict[str, SampleSet]) -> None:
    x = audio(run(sets, tune(lead=76, pluck=67), 4.0), "c1", "lead")
    _, power = spectrum(x)
    floor = float(np.median(power))
    for note in (76, 67):  # E5 659 Hz and G4 392 Hz: both inside the phone's band
        assert level_at(x, midi_hz(note)) > 1000 * floor, note


def test_a_holders_own_part_is_louder_in_their_mix_than_in_the_shared_mix(
    sets: dict[str, SampleSet],
) -> None:
    """Measured by the lead's fundamental against the pluck's: the lead's holder hears
    it 6 dB more above the pluck than everyone else does, within the spectral overlap
    of the two parts (±2 dB); with the boost set to 0 dB, what everyone hears."""
    frames = run(sets, tune(lead=76, pluck=67), 4.0)
    lead, pluck = midi_hz(76), midi_hz(67)
    own, shared = audio(frames, "c1", "lead"), audio(frames, "c2", None)
    gain = db(level_at(own, lead) / level_at(own, pluck)) - db(
        level_at(shared, lead) / level_at(shared, pluck)
    )
    assert 4 < gain < 8, gain  # 6 dB, the mixer's default
    # The pluck's holder hears the opposite.
    theirs = audio(frames, "c3", "pluck")
    gain = db(level_at(theirs, pluck) / level_at(theirs, lead)) - db(
        level_at(shared, pluck) / level_at(shared, lead)
    )
    assert 4 < gain < 8, gain  # 6 dB, the mixer's default
    flat = run(sets, tune(lead=76, pluck=67), 4.0, own_boost_db=0.0)
    own, shared = audio(flat, "c1", "lead"), audio(flat, "c2", None)
    assert own.tolist() == shared.tolist()


def test_nothing_outside_the_phone_band_comes_within_40_db_of_what_is_inside(
    sets: dict[str, SampleSet],
) -> None:
    """A busy mix with a bass (G1–G2, fundamentals under 100 Hz), a kick and bright
    bells: under 200 Hz and over 3,700 Hz stay 40 dB under 300–3,400 Hz."""
    notes: list[NoteOn | NoteOff] = []
    for n in range(32):
        t = n * 0.125
        notes += [on(t, "drums", (36, 42, 38, 42)[n % 4]), on(t, "bass", 31 + n % 12)]
        notes += [off(t + 0.12, "bass", 31 + n % 12), on(t, "bells", 96 + n % 7)]
        notes.append(off(t + 0.12, "bells", 96 + n % 7))
    x = audio(run(sets, notes, 4.0), "c1", None)
    freqs, power = spectrum(x)
    inside = power[(freqs >= 300) & (freqs <= 3400)].sum()
    outside = power[(freqs < 200) | (freqs > 3700)].sum()
    assert db(inside / outside) > 40, db(inside / outside)


def test_a_steady_mix_sits_at_the_earpiece_target_and_never_past_the_ceiling(
    sets: dict[str, SampleSet],
) -> None:
    """After the levelling's settling second, each second of a busy mix is within
    3 dB of −20 dBFS RMS, quiet velocities and loud alike, and no sample goes over
    −3 dBFS."""
    for velocity in (40, 127):
        notes = [replace(n, velocity=velocity) if isinstance(n, NoteOn) else n for n in tune()]
        x = audio(run(sets, notes, 4.0), "c1", None)
        for second in range(1, 4):
            part = x[second * RATE : (second + 1) * RATE]
            level = 20 * np.log10(np.sqrt(np.mean(part**2)))
            assert abs(level - TARGET_DBFS) < 3, (velocity, second, level)
        assert 20 * np.log10(np.max(np.abs(x))) <= CEILING_DBFS + 0.1


def test_a_cue_plays_in_its_callers_mix_only(sets: dict[str, SampleSet]) -> None:
    """The same track's two holders: the one cued hears the cue's first tone; the
    other gets the very bytes everyone with that mix gets."""
    frames = run(sets, tune(), 2.0, cues=[("cued", "track", 1.0)])
    first_tone = FIGURES["track"][0][0]
    cued, other = audio(frames, "cued", "lead"), audio(frames, "other", "lead")
    window = slice(RATE, RATE + len(CUE_SOUNDS["track"]))
    assert level_at(cued[window], first_tone) > 100 * level_at(other[window], first_tone)
    assert all(f.for_caller("other", "lead") is f.mixes["lead"] for f in frames)
    assert audio(frames[:50], "cued", "lead").tolist() == other[: 50 * FRAME].tolist()


@pytest.mark.parametrize("kind", ["track", "front", "lost"])
def test_each_cue_is_a_distinct_figure_inside_the_band(kind: str) -> None:
    sound = CUE_SOUNDS[kind].astype(np.float64)  # type: ignore[index]
    freqs, power = spectrum(np.concatenate([sound, np.zeros(RATE)]))
    assert power[(freqs >= 300) & (freqs <= 3400)].sum() > 1e4 * power[freqs > 3700].sum()
    others = [k for k in FIGURES if k != kind]
    assert all(FIGURES[k] != FIGURES[kind] for k in others)  # type: ignore[index]


def test_the_same_notes_give_the_same_bytes(sets: dict[str, SampleSet]) -> None:
    def night() -> list[bytes]:
        frames = run(sets, tune(), 2.0, cues=[("c1", "lost", 0.5)])
        return [f.for_caller("c1", "lead").ulaw + f.mixes["pluck"].pcm16 for f in frames]

    assert night() == night()


def test_silence_in_is_mu_law_silence_out(sets: dict[str, SampleSet]) -> None:
    for frame in run(sets, [], 0.2):
        assert set(frame.mixes) == {None, *(t.name for t in TRACKS)}
        for mix in frame.mixes.values():
            assert mix.ulaw == b"\xff" * FRAME and mix.pcm16 == bytes(2 * FRAME)


def test_a_panic_fades_every_voice_out_within_a_frame(sets: dict[str, SampleSet]) -> None:
    mixer = PhoneMixer(sets, TRACKS)
    mixer.note_on(on(0.0, "pad", 60))
    frames = [mixer.frame(n * SECONDS_PER_FRAME) for n in range(10)]
    assert frames[-1].mixes[None].ulaw != b"\xff" * FRAME
    mixer.panic(0.2)
    frames = [mixer.frame(n * SECONDS_PER_FRAME) for n in range(10, 13)]
    assert frames[-1].mixes[None].ulaw == b"\xff" * FRAME


def test_notes_of_unknown_tracks_or_beyond_midi_are_silent(sets: dict[str, SampleSet]) -> None:
    frames = run(sets, [on(0.0, "nobody", 60), on(0.0, "lead", 200)], 0.2)
    assert all(f.mixes[None].ulaw == b"\xff" * FRAME for f in frames)


def onset(x: np.ndarray) -> int:
    """The first sample over a tenth of the loudest."""
    return int(np.argmax(np.abs(x) > 0.1 * np.max(np.abs(x))))


def test_a_note_starts_on_its_own_sample_within_a_frame(sets: dict[str, SampleSet]) -> None:
    """Two claps 10.5 ms into their frames, a second apart: each heard 84 samples in
    (within the attack's first millisecond), not at the frame's edge."""
    frames = run(sets, [on(1.0105, "drums", 39), on(2.0105, "drums", 39)], 2.5)
    x = audio(frames, "c1", None)
    for second in (1, 2):
        assert abs(onset(x[second * RATE : second * RATE + 800]) - 84) <= 8


def test_a_note_fed_after_its_time_starts_at_the_next_frame(sets: dict[str, SampleSet]) -> None:
    mixer = PhoneMixer(sets, TRACKS)
    early = [mixer.frame(n * SECONDS_PER_FRAME) for n in range(5)]
    mixer.note_on(on(0.05, "drums", 39))  # due in frame 2, which is gone
    late = [mixer.frame(n * SECONDS_PER_FRAME) for n in range(5, 10)]
    assert all(f.mixes[None].ulaw == b"\xff" * FRAME for f in early)
    x = audio(late, "c1", None)
    assert onset(x) <= 8


def test_the_mu_law_is_the_relays_encoder_for_every_sample() -> None:
    ramp = np.linspace(-1.0, 1.0, 4 * FRAME * 100, dtype=np.float32)
    for chunk in ramp.reshape(-1, FRAME):
        made = encode(chunk)
        assert made.ulaw == ulaw_encode(np.frombuffer(made.pcm16, dtype="<i2"))


def test_the_notes_sounds_kept_stay_within_their_bytes_and_the_mix_is_the_same(
    sets: dict[str, SampleSet],
) -> None:
    lead = next(t for t in TRACKS if t.name == "lead")
    sounds = PhoneSounds(limit=600_000)  # a few of the longest notes
    for note in range(48, 84):  # three octaves: far more than the limit holds
        sounds.get(lead, sets[lead.samples], note)
        assert sounds.nbytes <= 600_000 or len(sounds) == 1
    assert 1 < len(sounds) < 36
    recent = sounds.get(lead, sets[lead.samples], 83)  # the last made is still kept
    assert sounds.get(lead, sets[lead.samples], 83) is recent
    # A mixer whose sounds are made again and again renders the same bytes.
    small = PhoneMixer(sets, TRACKS, sounds=PhoneSounds(limit=1))
    roomy = PhoneMixer(sets, TRACKS)
    for mixer in (small, roomy):
        for note in tune():
            (mixer.note_on if isinstance(note, NoteOn) else mixer.note_off)(note)  # type: ignore[arg-type]
    for n in range(100):
        assert small.frame(n * SECONDS_PER_FRAME).mixes == roomy.frame(n * SECONDS_PER_FRAME).mixes
