#!/usr/bin/env python3
"""In-band DTMF detector: speed on one core, and accuracy beside multimon-ng's.

``.venv/bin/python bench/dtmf_speed.py [--seconds S]`` feeds `relay.gateways.dtmf`'s
`DtmfDetector` 20 ms μ-law chunks (160 bytes, as Twilio Media Streams deliver them) of
a generated call mixing silence, key presses and loud speech-like noise, on one thread
pinned to one core, for about ``--seconds`` (5) of wall-clock time, and prints × real
time (target ≥ 1,000×: one core serves a thousand calls) and µs per chunk; then the
same for a whole Twilio stream's core (`TwilioStream.receive`: JSON, base64, detector
and the merging of dtmf messages with tones), the cost per call the relay pays. Then the
accuracy table: the Q.24 must-accept corpus of relay/rehearsal/dtmf_corpus.py
(every key; 40–100 ms; ±1.5 %; twist; levels; white noise at 20/10/6 dB) through our
detector and through multimon-ng (needs `multimon-ng` and `sox`; skipped, saying so,
when they are missing). The exit code is 0 whatever the numbers: it is a measurement.

    python bench/dtmf_speed.py [--seconds S] [--json FILE]
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

import numpy as np
import orjson

from bench.stats import load, write_result
from relay.gateways.dtmf import CHUNK_SAMPLES, KEYS, DtmfDetector, dtmf_tone, ulaw_encode
from relay.gateways.twilio import TwilioStream, seal
from relay.rehearsal.dtmf_corpus import (
    INSTALL,
    accuracy_corpus,
    detect,
    missing_tools,
    multimon,
    score,
    table,
)


def call_audio(seconds: float, seed: int) -> tuple[list[bytes], int]:
    """A call's μ-law chunks: a third silence, a third presses, a third speech-like
    noise (noise shaped by a slowly moving resonance, with a syllable-rate envelope)."""
    rng = np.random.default_rng(seed)
    parts: list[np.ndarray] = []
    total = 0
    pressed = 0
    while total < seconds * 8000:
        kind = total // 8000 % 3
        if kind == 0:
            part = np.zeros(8000)
        elif kind == 1:
            keys = [dtmf_tone(KEYS[int(rng.integers(16))], 80) for _ in range(10)]
            part = np.concatenate([np.concatenate([k, np.zeros(720)]) for k in keys])
            pressed += 10
        else:
            noise = rng.normal(0.0, 1.0, 8000)
            shaped = np.convolve(noise, np.hanning(9), mode="same")
            envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * np.arange(8000) / 8000)
            part = 6000 * shaped * envelope
        parts.append(part)
        total += part.size
    data = ulaw_encode(np.concatenate(parts))
    chunks = [data[i : i + CHUNK_SAMPLES] for i in range(0, len(data), CHUNK_SAMPLES)]
    return chunks, pressed


def twilio_frames(chunks: list[bytes]) -> list[bytes]:
    """The chunks as a Twilio Media Stream delivers them: `start`, then `media`
    messages (JSON, base64), as the relay's socket hands them to the core."""
    key = b"bench" * 8
    params = {"channel": "dialjam", "caller": "c-bench", "last_digits": "12"}
    params["seal"] = seal(key, "CAbench", "dialjam", "c-bench", "12")
    fmt = {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
    start = {"callSid": "CAbench", "streamSid": "MZbench", "mediaFormat": fmt}
    message = {"event": "start", "start": {**start, "customParameters": params}}
    frames = [orjson.dumps({**message, "streamSid": "MZbench"})]
    for n, chunk in enumerate(chunks):
        media = {"track": "inbound", "chunk": str(n + 1), "timestamp": str(20 * n)}
        media["payload"] = base64.b64encode(chunk).decode()
        message = {"event": "media", "sequenceNumber": str(n + 2), "media": media}
        frames.append(orjson.dumps({**message, "streamSid": "MZbench"}))
    return frames


def timed(seconds: float, run: Callable[[], int]) -> tuple[int, float, int]:
    """Run `run()` (→ keys found) again and again for about `seconds`; (runs, elapsed, found)."""
    runs, elapsed, found = 0, 0.0, 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        found = run()
        elapsed += time.perf_counter() - start
        runs += 1
    return runs, elapsed, found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--json", metavar="FILE", help="also save the figures as JSON")
    args = parser.parse_args()
    load_at_start = load()
    figures: dict[str, Any] = {}
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    chunks, pressed = call_audio(60.0, seed=1)
    audio_s = len(chunks) * CHUNK_SAMPLES / 8000

    def detector_run() -> int:
        detector = DtmfDetector()
        return len([d for chunk in chunks for d in detector.feed_ulaw(chunk)])

    runs, elapsed, found = timed(args.seconds, detector_run)
    per_chunk = elapsed / (runs * len(chunks))
    factor = audio_s * runs / elapsed
    print(f"DtmfDetector, one core, 20 ms μ-law chunks: {runs} × {audio_s:.0f} s of call audio")
    print(
        f"  {factor:,.0f}× real time  {per_chunk * 1e6:.1f} µs per chunk  "
        f"({'PASS' if factor >= 1000 else 'MISS'}: target ≥ 1,000×)"
    )
    print(f"  keys heard: {found} of {pressed} pressed (speech-like noise between them)")
    figures["detector"] = {
        "real_time_factor": factor,
        "us_per_chunk": per_chunk * 1e6,
        "keys_heard": found,
        "keys_pressed": pressed,
    }
    frames = twilio_frames(chunks)

    def stream_run() -> int:
        core = TwilioStream(seal_key=b"bench" * 8)
        return sum(len(core.receive(frame, 0.02 * n)) for n, frame in enumerate(frames)) - 1

    runs, elapsed, found = timed(args.seconds, stream_run)
    factor = audio_s * runs / elapsed
    print(
        f"TwilioStream.receive (JSON + base64 + detector): {factor:,.0f}× real time, "
        f"{elapsed / (runs * len(frames)) * 1e6:.1f} µs per message; keys {found} of {pressed}"
    )
    figures["twilio_stream"] = {
        "real_time_factor": factor,
        "us_per_message": elapsed / (runs * len(frames)) * 1e6,
    }
    missing = missing_tools()
    if "multimon-ng" in missing or "sox" in missing:
        print(f"accuracy table skipped: {', '.join(missing)} missing — {INSTALL}")
    else:
        figures["accuracy"] = accuracy()
    if args.json:
        write_result(args.json, "dtmf_speed", load_at_start, {"seconds": args.seconds}, figures)


def accuracy() -> dict[str, Any]:
    """The Q.24 corpus through dtmf.py and multimon-ng: prints the table, returns the
    totals."""
    rows = []
    totals = [0, 0, 0, 0, 0]
    with tempfile.TemporaryDirectory() as workdir:
        for index, clip in enumerate(accuracy_corpus()):
            ours, theirs = detect(clip.pcm), multimon(clip.pcm, Path(workdir), f"c{index}")
            hits, wrong = score(clip.expected, ours)
            their_hits, their_wrong = score(clip.expected, theirs)
            for i, value in enumerate((len(clip.expected), hits, wrong, their_hits, their_wrong)):
                totals[i] += value
            rows.append((clip.name, clip.expected, ours or "-", theirs or "-"))
    print(table(rows))
    expected, hits, wrong, their_hits, their_wrong = totals
    print(
        f"detection rate: dtmf.py {hits / expected:.1%} ({hits}/{expected}), "
        f"multimon-ng {their_hits / expected:.1%} ({their_hits}/{expected})"
    )
    print(f"false digits:   dtmf.py {wrong}, multimon-ng {their_wrong}")
    return {
        "tones": expected,
        "ours": {"hits": hits, "false": wrong},
        "multimon_ng": {"hits": their_hits, "false": their_wrong},
    }


if __name__ == "__main__":
    main()
