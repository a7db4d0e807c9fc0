#!/usr/bin/env python3
"""In-band DTMF at the edges issue 14 named: twist at the Q.24 limits, a lost 20 ms
frame, pink noise at 6 dB SNR, talk-off on speech and music (each false digit listed:
detector, key, time, clip), key-down → report latency and speed — ours beside
multimon-ng's on the same audio, in the same run.

``.venv/bin/python bench/dtmf_margins.py [--compare OLD_DTMF_PY] [--talkers N] [--json FILE]``

Every clip is generated from fixed seeds (relay/rehearsal/dtmf_corpus.py), so two
runs print the same rates; only the speed line moves with the machine's load. With
``--compare`` another version of ``relay/gateways/dtmf.py`` (say, ``git show
f1014db:relay/gateways/dtmf.py > /tmp/old_dtmf.py``) runs beside ours: the before and
after of one run, on the same audio and the same load.

How a lost frame reaches the detector (LOSS_MODELS): ``told`` — the gateway sees the
gap (an RTP sequence gap; a jump in a Twilio ``media.chunk``) and calls
``DtmfDetector.lost`` (multimon-ng and a compared detector without that call get
silence there);
``silence`` — the gap filled with silence, unsaid; ``concealed`` — the previous frame
repeated; ``skipped`` — the frame just missing. Needs ``multimon-ng``, ``sox`` and
``espeak-ng`` for the multimon-ng column and the talk-off rows (said, and skipped,
when missing). The exit code is 0 whatever the numbers: it is a measurement.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import ModuleType

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

import numpy as np
from numpy.typing import NDArray

from bench.dtmf_speed import call_audio
from bench.stats import load, write_result
from relay.gateways import dtmf
from relay.gateways.dtmf import CHUNK_SAMPLES, ULAW_TO_PCM, ulaw_encode
from relay.rehearsal import dtmf_corpus as corpus

Frames = list[bytes | None]


def load_module(path: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location("dtmf_compared", path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Detector:
    """One version of the detector, fed 20 ms frames as a gateway would."""

    def __init__(self, name: str, module: ModuleType) -> None:
        self.name = name
        self.module = module

    def frames(self, frames: Iterable[bytes | None]) -> list[tuple[str, int]]:
        detector = self.module.DtmfDetector()
        found: list[tuple[str, int]] = []
        fed = 0
        for frame in frames:
            if frame is None:
                fed += CHUNK_SAMPLES
                lost = getattr(detector, "lost", None)
                keys = lost(CHUNK_SAMPLES) if lost else detector.feed_ulaw(b"\xff" * 160)
            else:
                fed += len(frame)
                keys = detector.feed_ulaw(frame)
            found += [(key, fed) for key in keys]
        return found

    def keys(self, frames: Iterable[bytes | None]) -> str:
        return "".join(key for key, _ in self.frames(frames))


def chunks(pcm: NDArray[np.int16]) -> Frames:
    data = ulaw_encode(pcm)
    return [data[i : i + CHUNK_SAMPLES] for i in range(0, len(data), CHUNK_SAMPLES)]


def as_audio(frames: Frames) -> NDArray[np.int16]:
    """What a receiver without a `lost` call hears: a told gap as silence."""
    data = b"".join(b"\xff" * CHUNK_SAMPLES if frame is None else frame for frame in frames)
    return ULAW_TO_PCM[np.frombuffer(data, dtype=np.uint8)]


class Table:
    def __init__(self, names: list[str]) -> None:
        self.names = names
        self.rows: list[tuple[str, list[str], str]] = []
        self.figures: dict[str, dict[str, float]] = {}

    def add(self, label: str, values: dict[str, float], unit: str, target: str) -> None:
        self.figures[label] = values
        cells = [
            ("-" if name not in values else f"{values[name]:.1f}{unit}") for name in self.names
        ]
        self.rows.append((label, cells, target))
        print(f"  {label:<44}" + "".join(f"{c:>14}" for c in cells) + f"   {target}", flush=True)

    def header(self) -> None:
        print(f"  {'':<44}" + "".join(f"{n:>14}" for n in self.names) + "   target")


def rate(expected: str, found: str) -> float:
    return 100.0 * corpus.score(expected, found)[0] / max(1, len(expected))


def extra(expected: str, found: str) -> float:
    """Digits reported beyond the presses found, per hundred presses (a split press
    shows as one extra digit)."""
    return 100.0 * corpus.score(expected, found)[1] / max(1, len(expected))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--compare", metavar="DTMF_PY", help="another dtmf.py to run beside")
    parser.add_argument("--json", metavar="FILE", help="also save the figures as JSON")
    parser.add_argument("--seconds", type=float, default=4.0, help="for each speed figure")
    parser.add_argument(
        "--talkers",
        type=int,
        default=240,
        help="espeak-ng talkers drawn (more_talkers) beside the 14 fixed ones",
    )
    args = parser.parse_args()
    load_at_start = load()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    detectors = [Detector("dtmf.py", dtmf)]
    if args.compare:
        detectors.insert(0, Detector("compared", load_module(args.compare)))
    missing = corpus.missing_tools()
    peer = not ({"multimon-ng", "sox"} & set(missing))
    names = [d.name for d in detectors] + (["multimon-ng"] if peer else [])
    if not peer:
        print(f"multimon-ng column skipped: {', '.join(missing)} missing — {corpus.INSTALL}")
    table = Table(names)
    table.header()
    with tempfile.TemporaryDirectory() as workdir:
        work = Path(workdir)
        counter = iter(range(10**6))

        def theirs(pcm: NDArray[np.int16]) -> str:
            return corpus.multimon(pcm, work, f"m{next(counter)}")

        def row(
            expected: str, frames: Frames, measure: Callable[[str, str], float]
        ) -> dict[str, float]:
            values = {d.name: measure(expected, d.keys(frames)) for d in detectors}
            if peer:
                values["multimon-ng"] = measure(expected, theirs(as_audio(frames)))
            return values

        for twist, target in ((8.0, "≥ 95 %"), (-4.0, "≥ 95 %"), (10.0, "≤ 5 %"), (-6.0, "≤ 5 %")):
            signal, marks = corpus.scattered(320, seed=int(100 + twist * 10), twist_db=twist)
            expected = "".join(mark.key for mark in marks)
            frames = chunks(corpus.through_ulaw(signal))
            table.add(
                f"twist {twist:+.0f} dB, 40–100 ms: heard",
                row(expected, frames, rate),
                " %",
                target,
            )
        short, short_marks = corpus.scattered(600, seed=5, tone_ms=(40, 40))
        short_keys = "".join(mark.key for mark in short_marks)
        long, long_marks = corpus.scattered(300, seed=6, tone_ms=(500, 3000))
        long_keys = "".join(mark.key for mark in long_marks)
        for model in corpus.LOSS_MODELS:
            frames = corpus.lossy_chunks(corpus.through_ulaw(short), 0.02, 9, model)
            table.add(
                f"40 ms tones, 1 frame in 50 lost ({model}): heard",
                row(short_keys, frames, rate),
                " %",
                "≥ 98 %" if model == "told" else "",
            )
        for model in corpus.LOSS_MODELS:
            frames = corpus.lossy_chunks(corpus.through_ulaw(long), 0.02, 10, model)
            table.add(
                f"0.5–3 s presses, 1 in 50 lost ({model}): split",
                row(long_keys, frames, extra),
                " %",
                "0 %" if model == "told" else "",
            )
        for name, noisy in (("pink", corpus.with_pink_noise), ("white", corpus.with_noise)):
            expected = corpus.ALL_KEYS * 2
            rates: dict[str, list[float]] = {}
            for seed in range(6):
                for ms in (40, 60):
                    signal = noisy(corpus.presses(expected, ms), 6, seed=seed * 10 + ms)
                    for key, value in row(
                        expected, chunks(corpus.through_ulaw(signal)), rate
                    ).items():
                        rates.setdefault(key, []).append(value)
            table.add(
                f"{name} noise 6 dB SNR, 40 + 60 ms: heard",
                {key: statistics.fmean(v) for key, v in rates.items()},
                " %",
                "≥ 98 %" if name == "pink" else "",
            )
        if "espeak-ng" in missing or not peer:
            print(f"talk-off rows skipped: {', '.join(missing)} missing — {corpus.INSTALL}")
        else:
            talkers = [*corpus.TALKERS, *corpus.more_talkers(args.talkers)]
            speech = corpus.speech_corpus(work, talkers)
            music = corpus.music_corpus(work) + corpus.music_corpus(work, seed=20)
            false_digits: list[str] = []
            for kind, chosen in (("speech", speech), ("music", music)):
                seconds = sum(clip.pcm.size for clip in chosen) / corpus.RATE
                values: dict[str, float] = {}
                for d in detectors:
                    values[d.name] = 0.0
                    for clip in chosen:
                        for key, at in d.frames(chunks(clip.pcm)):
                            values[d.name] += 1
                            false_digits.append(
                                f"    {d.name}: {key} at {at / corpus.RATE:.2f} s of {clip.name}"
                            )
                if peer:
                    values["multimon-ng"] = float(sum(len(theirs(clip.pcm)) for clip in chosen))
                voices = f", {len(chosen)} voices" if kind == "speech" else ""
                label = f"talk-off, {kind} ({seconds:.0f} s{voices}): false digits"
                table.add(label, values, "", "0")
            print("\n".join(false_digits), flush=True)
        signal, marks = corpus.scattered(400, seed=8)
        frames = chunks(corpus.through_ulaw(signal))
        for q, label in ((50, "median"), (99, "p99")):
            values = {
                d.name: float(np.percentile(corpus.latencies(marks, d.frames(frames)), q))
                for d in detectors
            }
            table.add(f"key-down → report, {label}", values, " ms", "README: ~25 ms")
        call_frames: Frames = list(call_audio(60.0, seed=1)[0])
        tone_frames = chunks(corpus.through_ulaw(corpus.scattered(200, seed=3)[0]))
        for label, frames in (
            ("speed, dtmf_speed.py's call mix: × real time", call_frames),
            ("speed, back-to-back presses: × real time", tone_frames),
        ):
            audio_s = len(frames) * CHUNK_SAMPLES / corpus.RATE
            factors: dict[str, list[float]] = {d.name: [] for d in detectors}
            deadline = time.perf_counter() + args.seconds * len(detectors)
            while time.perf_counter() < deadline:  # interleaved: all see the same load
                for d in detectors:
                    start = time.perf_counter()
                    d.keys(frames)
                    factors[d.name].append(audio_s / (time.perf_counter() - start))
            best = {name: max(values) for name, values in factors.items()}
            table.add(label, best, "×", "≥ 300 (calls a core)")
    if args.json:
        write_result(
            args.json, "dtmf_margins", load_at_start, {"compare": args.compare}, table.figures
        )


if __name__ == "__main__":
    main()
