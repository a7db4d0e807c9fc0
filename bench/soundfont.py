#!/usr/bin/env python3
"""Should the speakers play a General MIDI SoundFont through FluidSynth instead of our
own samples? The same night through both, measured side by side.

``.venv/bin/python bench/soundfont.py`` writes the musicality bench's seeded crowd
(``bench/musicality.py``: 8 people-like callers for 90 s) as an event log and renders
it twice:

- **ours**: ``python -m billboard --replay LOG --render WAV --record MID``, the speakers'
  mix exactly as the show makes it (our samples, pan, sends, reverb, delay, limiter);
- **FluidSynth**: the .mid that same run recorded (programs, pan, volume and reverb
  sends on every channel, as the MIDI out sends them), played through pyfluidsynth
  with each SoundFont found (``fluid-soundfont-gm``'s FluidR3_GM, 141 MB, and
  ``timgm6mb-soundfont``'s TimGM6mb, 6 MB), its own reverb and chorus on, block by
  block as an audio callback would ask for it.

For each: the CPU time and how many times faster than real time that is on one core,
the memory the sounds take, and the mix's loudness (BS.1770), true peak, clipped
samples and L/R correlation (``bench/music_metrics.py``). Timing is not measured here:
both play a note at the start of the next audio period after it is handed over (our
mixer's 256 frames; FluidSynth's driver period, in 64-frame blocks), so the note's
time is the scheduler's business either way (``bench/grid_timing.py --sound``).

Needs ``pip install pyfluidsynth`` and ``apt-get install fluid-soundfont-gm`` (not
dependencies of the show: the measurement decided against it, README "Sound"). Exit
status 0 whatever the numbers; 1 when nothing could be measured.

    .venv/bin/python bench/soundfont.py [--callers N] [--duration S] [--json FILE]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout

from bench import music_metrics  # noqa: E402
from bench.musicality import crowd_log  # noqa: E402
from bench.stats import load, write_result  # noqa: E402

SOUNDFONTS = (  # the small one first: memory is read as the growth of this process
    Path("/usr/share/sounds/sf2/TimGM6mb.sf2"),
    Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"),
)
RATE = 48_000
BLOCK = 256  # frames an audio callback asks for, as the show's mixer buffer


def _rss_mb() -> float:
    """This process's resident memory now."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def ours(log: Path, until: float, work: Path) -> tuple[dict[str, Any], Path]:
    """Our render of `log`: its measures, and the .mid it recorded."""
    wav, mid = work / "ours.wav", work / "night.mid"
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy"}
    command = [sys.executable, "-m", "billboard", "--replay", str(log), "--render", str(wav)]
    command += ["--record", str(mid), "--duration", f"{until:.3f}"]
    cpu = _children_cpu()
    done = subprocess.run(command, capture_output=True, env=env, timeout=900, cwd=ROOT)
    cpu = _children_cpu() - cpu
    if done.returncode != 0 or not wav.exists() or not mid.exists():
        raise RuntimeError(f"the render failed:\n{done.stderr.decode()[-2000:]}")
    with wave.open(str(wav), "rb") as w:
        rate, channels = w.getframerate(), w.getnchannels()
        raw = w.readframes(w.getnframes())
    audio = np.frombuffer(raw, dtype="<i2").reshape(-1, channels).astype(np.float32)
    audio /= 32768
    measures = {"cpu_s": cpu, "x_real_time": until / cpu, "rss_mb": None}
    measures.update(music_metrics.audio_measures(audio, rate))
    return measures, mid


def fluid(mid: Path, soundfont: Path, until: float) -> dict[str, Any]:
    """`mid` through FluidSynth with `soundfont`, block by block."""
    import fluidsynth  # type: ignore[import-not-found,import-untyped,unused-ignore]
    import mido

    rss = _rss_mb()
    synth = fluidsynth.Synth(samplerate=float(RATE), gain=0.5)
    synth.sfload(str(soundfont))
    loaded_mb = _rss_mb() - rss
    blocks: list[Any] = []
    began, done = time.process_time(), 0  # frames rendered
    now = 0.0
    for msg in mido.MidiFile(str(mid)):
        now += msg.time
        due = min(round(now * RATE), round(until * RATE))
        while done + BLOCK <= due:  # the callback's blocks up to the message's time
            blocks.append(synth.get_samples(BLOCK))
            done += BLOCK
        if msg.type == "note_on":
            synth.noteon(msg.channel, msg.note, msg.velocity)
        elif msg.type == "note_off":
            synth.noteoff(msg.channel, msg.note)
        elif msg.type == "program_change":
            synth.program_change(msg.channel, msg.program)
        elif msg.type == "control_change":
            synth.cc(msg.channel, msg.control, msg.value)
    while done < round(until * RATE):
        blocks.append(synth.get_samples(BLOCK))
        done += BLOCK
    cpu = time.process_time() - began
    synth.delete()
    audio = np.concatenate(blocks).reshape(-1, 2).astype(np.float32)
    audio /= 32768
    measures = {"cpu_s": cpu, "x_real_time": until / cpu, "rss_mb": loaded_mb}
    measures.update(music_metrics.audio_measures(audio, RATE))
    return measures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--callers", type=int, default=8)
    parser.add_argument("--duration", type=float, default=90.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, default=ROOT / "bench/results/soundfont.json")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {}
    load_at_start = load()
    with tempfile.TemporaryDirectory(prefix="soundfont-") as tmp:
        work = Path(tmp)
        log = work / "night.jsonl"
        until = crowd_log(args.callers, args.duration, 1.4, args.seed, log) + 20.0
        results["ours"], mid = ours(log, until, work)
        try:
            import fluidsynth  # type: ignore[import-not-found,import-untyped,unused-ignore]  # noqa: F401
        except ImportError as err:
            print(f"FluidSynth not measured: {err} (pip install pyfluidsynth)")
        else:
            for soundfont in SOUNDFONTS:
                if not soundfont.exists():
                    print(f"{soundfont} not found (apt-get install fluid-soundfont-gm)")
                    continue
                results[f"fluidsynth {soundfont.stem}"] = fluid(mid, soundfont, until)
    print(f"{args.callers} callers, {until:.0f} s of music, rendered at {RATE} Hz on one core:")
    print("engine | × real time | sounds in memory | loudness | true peak | clipped | L/R corr")
    print("--- | --- | --- | --- | --- | --- | ---")
    for name, m in results.items():
        memory = "—" if m["rss_mb"] is None else f"{m['rss_mb']:.0f} MB"
        print(
            f"{name} | {m['x_real_time']:.0f}× | {memory} | {m['lufs']:.1f} LUFS"
            f" | {m['true_peak_dbtp']:.1f} dBTP | {m['clipped']} | {m['lr_correlation']:.2f}"
        )
    settings = {"callers": args.callers, "seconds": round(until, 1), "rate": RATE, "block": BLOCK}
    out = write_result(args.json, "bench/soundfont.py", load_at_start, settings, results)
    print(f"saved {out}")
    return 0 if results else 1


if __name__ == "__main__":
    raise SystemExit(main())
