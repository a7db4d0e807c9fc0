"""The DTMF corpus shared by tests/relay/gateways/test_dtmf.py and bench/dtmf_speed.py:
generated key presses as a call carries them (through G.711 μ-law), talk-off audio
(espeak-ng speech, music mixed from sounds/), and multimon-ng run on the same audio.

The tools are real: `espeak-ng`, `sox` and `multimon-ng` (Debian packages of the same
names). `missing_tools()` says which are absent; callers decide to fail, skip or say so.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import wave
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from relay.gateways.dtmf import (
    CHUNK_SAMPLES,
    DBM0_AMPLITUDE,
    KEYS,
    ULAW_TO_PCM,
    DtmfDetector,
    dtmf_tone,
    ulaw_encode,
)

RATE = 8000
ALL_KEYS = "".join(KEYS)
SOUNDS = Path(__file__).resolve().parents[2] / "sounds"
TOOLS = {"sox": "sox", "multimon-ng": "multimon-ng", "espeak-ng": "espeak-ng"}
INSTALL = "apt-get install --no-install-recommends multimon-ng sox espeak-ng"
SENTENCES = (
    "Welcome to the show. Press any key on your phone to play the building.",
    "One, two, three, four, five, six, seven, eight, nine, zero, star and hash.",
    "She sells sea shells by the sea shore, and the shells she sells are surely seashells.",
    "Hello? Hello! Can you hear me? I am calling from the square, the music is so loud!",
    "Peter Piper picked a peck of pickled peppers; how many pickled peppers did he pick?",
    "Ooooh, aaaah, eeeee, mmmmm: the quick brown fox jumps over the lazy dog at noon.",
)


def missing_tools() -> list[str]:
    return [name for name in TOOLS if shutil.which(name) is None]


@dataclass(frozen=True)
class Clip:
    """A stretch of call audio (int16 scale, 8 kHz, already through μ-law) and the
    keys a good receiver hears in it ("" for talk-off audio)."""

    name: str
    pcm: NDArray[np.int16]
    expected: str


def through_ulaw(signal: NDArray[np.float64]) -> NDArray[np.int16]:
    """What the far end of a G.711 μ-law call receives of `signal`."""
    return ULAW_TO_PCM[np.frombuffer(ulaw_encode(signal), dtype=np.uint8)]


def presses(
    keys: Iterable[str],
    tone_ms: float,
    gap_ms: float = 100.0,
    lead_ms: float = 100.0,
    *,
    level_dbm0: float = -10.0,
    twist_db: float = 0.0,
    row_offset: float = 0.0,
    column_offset: float = 0.0,
) -> NDArray[np.float64]:
    """`keys` pressed one after another: lead silence, then tone/gap for each."""
    parts = [np.zeros(round(lead_ms * RATE / 1000))]
    for key in keys:
        tone = dtmf_tone(
            key,
            tone_ms,
            level_dbm0=level_dbm0,
            twist_db=twist_db,
            row_offset=row_offset,
            column_offset=column_offset,
        )
        parts += [tone, np.zeros(round(gap_ms * RATE / 1000))]
    return np.concatenate(parts)


def with_noise(signal: NDArray[np.float64], snr_db: float, seed: int) -> NDArray[np.float64]:
    """White noise added at `snr_db` below a −10 dBm0-per-tone DTMF signal's power."""
    tone_power = (DBM0_AMPLITUDE * 10 ** (-10 / 20)) ** 2  # two tones of A²/2 each
    sigma = np.sqrt(tone_power / 10 ** (snr_db / 10))
    return signal + np.random.default_rng(seed).normal(0.0, sigma, signal.size)


def accuracy_corpus() -> list[Clip]:
    """Q.24's must-accept cases: every key, 40–100 ms, ±1.5 %, twist, noise."""
    clips: list[Clip] = []
    for ms in (40, 60, 100):
        clips.append(Clip(f"{ms} ms", through_ulaw(presses(KEYS, ms)), ALL_KEYS))
    for offset in (-0.015, 0.015):
        signal = presses(KEYS, 60, row_offset=offset, column_offset=offset)
        clips.append(Clip(f"{offset:+.1%} both tones", through_ulaw(signal), ALL_KEYS))
    for twist in (7.0, -3.0):
        signal = presses(KEYS, 60, twist_db=twist)
        clips.append(Clip(f"twist {twist:+.0f} dB", through_ulaw(signal), ALL_KEYS))
    for level in (-30.0, 0.0):
        signal = presses(KEYS, 60, level_dbm0=level)
        clips.append(Clip(f"level {level:.0f} dBm0", through_ulaw(signal), ALL_KEYS))
    for snr in (20, 10, 6):
        for ms in (40, 60):
            signal = with_noise(presses(KEYS, ms), snr, seed=snr * 100 + ms)
            clips.append(Clip(f"{ms} ms, SNR {snr} dB", through_ulaw(signal), ALL_KEYS))
    return clips


def detect(pcm: NDArray[np.int16], chunk: int = CHUNK_SAMPLES) -> str:
    """Our detector on `pcm`, fed as a call delivers it: μ-law, `chunk` samples at a time."""
    detector = DtmfDetector()
    data = ulaw_encode(pcm)
    found: list[str] = []
    for start in range(0, len(data), chunk):
        found += detector.feed_ulaw(data[start : start + chunk])
    return "".join(found)


def write_wav(path: Path, pcm: NDArray[np.int16], rate: int = RATE) -> Path:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(np.asarray(pcm, dtype="<i2").tobytes())
    return path


def read_wav(path: Path) -> NDArray[np.int16]:
    with wave.open(str(path), "rb") as wav:
        assert wav.getsampwidth() == 2 and wav.getnchannels() == 1, path
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").copy()


def resample(source: Path, target: Path, rate: int = RATE) -> Path:
    """sox: any WAV → 16-bit mono at `rate`."""
    subprocess.run(
        ["sox", str(source), "-r", str(rate), "-c", "1", "-b", "16", str(target)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return target


def multimon(pcm: NDArray[np.int16], workdir: Path, name: str = "clip") -> str:
    """multimon-ng's DTMF decoder on `pcm` (8 kHz). It reads raw signed 16-bit mono at
    its native 22050 Hz; sox converts (this is what `multimon-ng -t wav` would do)."""
    wav = write_wav(workdir / f"{name}.wav", pcm)
    raw = workdir / f"{name}.raw"
    subprocess.run(
        [
            "sox",
            "-V1",
            str(wav),
            "-t",
            "raw",
            "-r",
            "22050",
            "-e",
            "signed",
            "-b",
            "16",
            "-c",
            "1",
            str(raw),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    done = subprocess.run(
        ["multimon-ng", "-q", "-c", "-a", "DTMF", "-t", "raw", str(raw)],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = done.stdout.splitlines()
    return "".join(line.split(":", 1)[1].strip() for line in lines if line.startswith("DTMF:"))


def score(expected: str, found: str) -> tuple[int, int]:
    """(keys of `expected` found in order, digits too many or wrong): the longest
    common subsequence (difflib's matching blocks are not one, and undercount)."""
    previous = [0] * (len(found) + 1)
    for key in expected:
        current = [0]
        for index, other in enumerate(found):
            if key == other:
                current.append(previous[index] + 1)
            else:
                current.append(max(previous[index + 1], current[index]))
        previous = current
    hits = previous[-1]
    return hits, len(found) - hits


# Many voices, languages and pitches: a high voice's harmonics sweep through the DTMF
# bands, tonal languages hold a pitch, and sung-out vowels hold one longest (the
# classic talk-off). (language, espeak-ng voice, words a minute, pitch 0–99, text)
TALKERS = (
    ("en", "en", 160, 50, SENTENCES),
    ("en", "en+f3", 140, 70, SENTENCES),
    ("en", "en-us+m3", 200, 35, SENTENCES),
    ("en", "en-gb+f5", 120, 99, SENTENCES),
    ("en", "en-us+klatt", 170, 80, SENTENCES),
    ("en", "en+croak", 150, 20, SENTENCES),
    (
        "de",
        "de+f2",
        150,
        75,
        ("Hallo, hörst du mich? Drück eine Taste, dann spielt das Haus Musik für alle.",),
    ),
    (
        "fr",
        "fr+m4",
        160,
        45,
        ("Bonjour à tous! Appuyez sur une touche et la façade s'illumine en chantant.",),
    ),
    ("es", "es+f4", 170, 85, ("¡Hola! ¿Me oyes? Pulsa una tecla y el edificio toca música.",)),
    ("it", "it+m2", 150, 60, ("Ciao! Premi un tasto e il palazzo suona una canzone per noi.",)),
    ("cmn", "cmn", 150, 70, ("你好，请按一个键，整栋楼就会为大家演奏音乐。",)),
    ("ja", "ja+f1", 150, 90, ("もしもし、聞こえますか。ボタンを押すと建物が音楽を奏でます。",)),
    ("sung", "en+f4", 60, 99, ("Ooooooh, aaaaaaah, eeeeeeeh, laaaaaa, naaaaaa, mmmmmmm.",)),
    ("sung", "en+m1", 50, 10, ("Ooooooh, aaaaaaah, eeeeeeeh, laaaaaa, naaaaaa, mmmmmmm.",)),
)


Talker = tuple[str, str, int, int, tuple[str, ...]]

# espeak-ng's voice variants (`espeak-ng --voices=variant`): men, women, children,
# robots, whispers, Klatt formant synthesis.
_VARIANT_NAMES = (
    "adam Alex Alicia Andrea Andy Annie antonio aunty belinda benjamin boris caleb david "
    "Demonic Denis Diogo ed edward edward2 Gene Gene2 gustave announcer Henrique Hugo "
    "iven iven2 iven3 iven4 Jacky john kaukovalta Lee linda marcelo Marco Mario max "
    "Michael michel miguel Mike Nguyen pablo paul pedro quincy RicishayMax rob robert "
    "robosoft robosoft3 robosoft5 steph steph2 steph3 Storm Tweaky UniRobot zac anika "
    "AnxiousAndy f1 f2 f3 f4 f5 whisperf grandpa klatt klatt2 klatt3 klatt4 klatt5 klatt6 "
    "m1 m2 m3 m4 m5 m6 m7 m8 norbert sandro shelby travis victor whisper croak grandma"
)
VARIANTS = tuple(_VARIANT_NAMES.split())
# What a caller might say, in 22 of espeak-ng's languages (English in three accents).
TEXTS: dict[str, tuple[str, ...]] = {
    "en-us": SENTENCES,
    "en-gb": SENTENCES,
    "en-029": SENTENCES,
    "de": (
        "Hallo, hörst du mich? Drück eine Taste, dann spielt das Haus Musik für alle.",
        "Eins, zwei, drei, vier, fünf, sechs, sieben, acht, neun, null.",
    ),
    "fr": (
        "Bonjour à tous! Appuyez sur une touche et la façade s'illumine en chantant.",
        "Un, deux, trois, quatre, cinq, six, sept, huit, neuf, zéro.",
    ),
    "es": (
        "¡Hola! ¿Me oyes? Pulsa una tecla y el edificio toca música.",
        "Uno, dos, tres, cuatro, cinco, seis, siete, ocho, nueve, cero.",
    ),
    "it": (
        "Ciao! Premi un tasto e il palazzo suona una canzone per noi.",
        "Uno, due, tre, quattro, cinque, sei, sette, otto, nove, zero.",
    ),
    "pt-br": ("Olá! Você me ouve? Aperte uma tecla e o prédio toca música para todos.",),
    "nl": ("Hallo, hoor je mij? Druk op een toets en het gebouw speelt muziek.",),
    "sv": ("Hej! Hör du mig? Tryck på en knapp så spelar huset musik för alla.",),
    "fi": ("Hei! Kuuletko minua? Paina näppäintä, niin talo soittaa musiikkia.",),
    "pl": ("Cześć! Słyszysz mnie? Naciśnij klawisz, a budynek zagra muzykę.",),
    "ru": ("Привет! Ты меня слышишь? Нажми кнопку, и дом сыграет музыку для всех.",),
    "el": ("Γεια σας! Με ακούτε; Πατήστε ένα πλήκτρο και το κτίριο παίζει μουσική.",),
    "tr": ("Merhaba! Beni duyuyor musun? Bir tuşa bas, bina herkes için müzik çalsın.",),
    "hi": ("नमस्ते! क्या आप मुझे सुन सकते हैं? एक बटन दबाइए और इमारत संगीत बजाएगी।",),
    "ar": ("مرحبا! هل تسمعني؟ اضغط على زر وسيعزف المبنى الموسيقى للجميع.",),
    "cmn": ("你好，请按一个键，整栋楼就会为大家演奏音乐。", "一二三四五六七八九零，星号和井号。"),
    "yue": ("你好，請按一個掣，成棟樓就會為大家演奏音樂。",),
    "ja": ("もしもし、聞こえますか。ボタンを押すと建物が音楽を奏でます。",),
    "ko": ("여보세요, 들리세요? 버튼을 누르면 건물이 음악을 연주해요.",),
    "vi": ("Xin chào! Bạn có nghe tôi không? Bấm một phím và tòa nhà sẽ chơi nhạc.",),
    "th": ("สวัสดีครับ ได้ยินไหม กดปุ่มแล้วตึกจะเล่นดนตรีให้ทุกคนฟัง",),
    "sw": ("Habari! Unanisikia? Bonyeza kitufe na jengo litapiga muziki kwa wote.",),
}
SUNG = (
    "Ooooooh, aaaaaaah, eeeeeeeh, laaaaaa, naaaaaa, mmmmmmm.",
    "Laaa laaa laaa, daa daa daa, noooo, yeeees, wooooow.",
)
TALKER_SEED = 14


def more_talkers(count: int, seed: int = TALKER_SEED) -> list[Talker]:
    """`count` talkers drawn from `seed`: a random voice variant and pitch (0–99); one
    in five sings held vowels slowly (40–90 words a minute), the others speak one of
    TEXTS' languages at 100–240. The same count and seed give the same talkers, and a
    larger count the same first ones."""
    rng = np.random.default_rng(seed)
    languages = sorted(TEXTS)
    talkers: list[Talker] = []
    for _ in range(count):
        variant = VARIANTS[int(rng.integers(len(VARIANTS)))]
        pitch = int(rng.integers(0, 100))
        if rng.random() < 0.2:
            speed = int(rng.integers(40, 90))
            talkers.append(("sung", f"en+{variant}", speed, pitch, SUNG))
        else:
            language = languages[int(rng.integers(len(languages)))]
            speed = int(rng.integers(100, 240))
            talkers.append((language, f"{language}+{variant}", speed, pitch, TEXTS[language]))
    return talkers


def speech_corpus(workdir: Path, talkers: Iterable[Talker] = TALKERS) -> list[Clip]:
    """espeak-ng reading each talker's text (TALKERS: English in six voices, five
    other languages, sung vowels high and low; more from `more_talkers`), resampled to
    8 kHz by sox, loud (peak at −1 dBFS, a caller shouting over the music), then
    through μ-law. Each talker's audio is kept in `workdir` under a name made from the
    talker, and made again only when missing."""
    clips: list[Clip] = []
    for index, talker in enumerate(talkers):
        language, voice, speed, pitch, texts = talker
        name = hashlib.sha256(repr(talker).encode()).hexdigest()[:16]
        speech = workdir / f"speech-{name}_8k.wav"
        if not speech.exists():
            raw = workdir / f"speech-{name}.wav"
            command = ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch)]
            subprocess.run(
                [*command, "-w", str(raw), " ".join(texts)],
                check=True,
                capture_output=True,
                timeout=120,
            )
            resample(raw, workdir / f"speech-{name}.tmp.wav").replace(speech)
            raw.unlink()
        pcm = read_wav(speech)
        loud = pcm.astype(np.float64) * (0.9 * 32767 / max(1, int(np.abs(pcm).max())))
        clips.append(
            Clip(f"speech {index} ({language}, {voice}, p{pitch})", through_ulaw(loud), "")
        )
    return clips


def _sample(workdir: Path, name: str) -> NDArray[np.float64]:
    target = workdir / f"{Path(name).stem}_8k.wav"
    if not target.exists():
        resample(SOUNDS / name, target)
    return read_wav(target).astype(np.float64)


def _pitched(sample: NDArray[np.float64], semitones: float) -> NDArray[np.float64]:
    """The sample played `semitones` higher (resampled, as the billboard's player does)."""
    step = 2.0 ** (semitones / 12.0)
    positions = np.arange(0, sample.size - 1, step)
    return np.interp(positions, np.arange(sample.size), sample)


def music_corpus(workdir: Path, seconds: float = 30.0, seed: int = 7) -> list[Clip]:
    """Music from the project's own sounds: per instrument set, a random chord
    progression (three-note chords, notes within two octaves of the zone's root) over
    drums, mixed at 8 kHz, normalised to −1 dBFS, then through μ-law."""
    rng = np.random.default_rng(seed)
    sets = (
        ("keys", ("keys_67.wav", "keys_79.wav")),
        ("pad", ("pad_55.wav", "pad_67.wav")),
        ("bell", ("bell_91.wav", "bell_103.wav")),
        ("lead", ("lead_79.wav", "lead_91.wav")),
        ("pluck", ("pluck_67.wav", "pluck_79.wav")),
    )
    drums = [path.name for path in sorted(SOUNDS.glob("kit_*.wav"))]
    drums += [path.name for path in sorted(SOUNDS.glob("perc_*.wav"))]
    clips: list[Clip] = []
    length = round(seconds * RATE)
    for name, zones in sets:
        mix = np.zeros(length + RATE * 4)
        at = 0
        while at < length:
            zone = _sample(workdir, zones[int(rng.integers(len(zones)))])
            root = int(rng.integers(-12, 12))
            for interval in (0, int(rng.choice([3, 4])), 7):
                note = _pitched(zone, root + interval)[: RATE * 3]
                mix[at : at + note.size] += note
            at += int(rng.integers(RATE // 4, RATE))
        for beat in range(0, length, RATE // 4):
            drum = _sample(workdir, drums[int(rng.integers(len(drums)))])[:RATE]
            mix[beat : beat + drum.size] += 0.7 * drum
        mix = mix[:length]
        mix *= 0.9 * 32767 / max(1.0, float(np.abs(mix).max()))
        clips.append(Clip(f"music: {name} chords + drums", through_ulaw(mix), ""))
    return clips


def table(rows: Iterable[tuple[str, str, str, str]]) -> str:
    header = ("clip", "expected", "dtmf.py", "multimon-ng")
    lines = [header, *rows]
    widths = [max(len(line[i]) for line in lines) for i in range(4)]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)) for line in lines
    )


# -- the margins of issue 14: twist at the limits, lost frames, pink noise, latency --


def pink_noise(size: int, seed: int) -> NDArray[np.float64]:
    """Gaussian noise whose power falls 3 dB an octave (1/f), unit variance."""
    rng = np.random.default_rng(seed)
    spectrum = np.fft.rfft(rng.normal(0.0, 1.0, size))
    frequencies = np.fft.rfftfreq(size)
    frequencies[0] = frequencies[1]
    noise = np.fft.irfft(spectrum / np.sqrt(frequencies), size)
    noise -= noise.mean()
    scaled: NDArray[np.float64] = noise / max(1e-12, float(noise.std()))
    return scaled


def with_pink_noise(signal: NDArray[np.float64], snr_db: float, seed: int) -> NDArray[np.float64]:
    """Pink noise added at `snr_db` below a −10 dBm0-per-tone DTMF signal's power."""
    tone_power = (DBM0_AMPLITUDE * 10 ** (-10 / 20)) ** 2
    sigma = float(np.sqrt(tone_power / 10 ** (snr_db / 10)))
    return signal + sigma * pink_noise(signal.size, seed)


@dataclass(frozen=True)
class Press:
    """Where one key's tone starts and ends in a clip (samples)."""

    key: str
    start: int
    end: int


def scattered(
    count: int, seed: int, tone_ms: tuple[float, float] = (40.0, 100.0), **tone: float
) -> tuple[NDArray[np.float64], list[Press]]:
    """`count` random keys, random lengths within `tone_ms`, 60–200 ms apart, at random
    sample offsets (so every alignment against 20 ms frames and detector blocks
    occurs), each with `tone` (dtmf_tone's keyword arguments)."""
    rng = np.random.default_rng(seed)
    parts: list[NDArray[np.float64]] = [np.zeros(int(rng.integers(400, 1200)))]
    at = parts[0].size
    marks: list[Press] = []
    for _ in range(count):
        key = KEYS[int(rng.integers(len(KEYS)))]
        sound = dtmf_tone(key, float(rng.uniform(*tone_ms)), **tone)  # type: ignore[arg-type]
        gap = np.zeros(int(rng.integers(480, 1600)))
        marks.append(Press(key, at, at + sound.size))
        parts += [sound, gap]
        at += sound.size + gap.size
    return np.concatenate(parts), marks


LOSS_MODELS = ("told", "silence", "concealed", "skipped")
"""How a lost 20 ms frame reaches the detector: `told` — the gateway sees the gap (an
RTP sequence gap, a jump in Twilio's `media.chunk`/`timestamp`) and calls
`DtmfDetector.lost`; `silence` — the gateway fills the gap with silence and says
nothing; `concealed` — it repeats the last frame (G.711 Appendix I's loss concealment
in its simplest form); `skipped` — the frame is simply missing from the stream."""


def lossy_chunks(pcm: NDArray[np.int16], loss: float, seed: int, model: str) -> list[bytes | None]:
    """`pcm` as 20 ms μ-law frames, each lost with probability `loss`; a lost frame
    becomes what `model` makes of it (None: the detector is told)."""
    data = ulaw_encode(pcm)
    rng = np.random.default_rng(seed)
    frames: list[bytes | None] = []
    previous = bytes([0xFF]) * CHUNK_SAMPLES
    for start in range(0, len(data), CHUNK_SAMPLES):
        frame = data[start : start + CHUNK_SAMPLES]
        if rng.random() >= loss:
            frames.append(frame)
            previous = frame
        elif model == "told":
            frames.append(None)
        elif model == "silence":
            frames.append(bytes([0xFF]) * len(frame))
        elif model == "concealed":
            frames.append(previous[: len(frame)])
        # "skipped": nothing at all
    return frames


def detect_frames(frames: Iterable[bytes | None]) -> list[tuple[str, int]]:
    """Our detector on 20 ms frames (None: a frame the gateway knows is lost): each key
    with the sample count fed when it was reported."""
    detector = DtmfDetector()
    found: list[tuple[str, int]] = []
    fed = 0
    for frame in frames:
        if frame is None:
            fed += CHUNK_SAMPLES
            found += [(key, fed) for key in detector.lost(CHUNK_SAMPLES)]
            continue
        fed += len(frame)
        found += [(key, fed) for key in detector.feed_ulaw(frame)]
    return found


def latencies(marks: list[Press], found: list[tuple[str, int]]) -> list[float]:
    """Key-down → report (ms) for each press reported while its tone or the 100 ms
    after it lasted: the tone's start to the end of the frame that reported it."""
    result: list[float] = []
    reports = list(found)
    for mark in marks:
        for index, (key, at) in enumerate(reports):
            if key == mark.key and mark.start < at <= mark.end + 800:
                result.append((at - mark.start) / 8.0)
                del reports[index]
                break
    return result
