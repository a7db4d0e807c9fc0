"""A headless billboard as a real process, its relay embedded, simulated callers
publishing over real sockets; what it records is read back with mido."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import aiohttp
import mido
import orjson

from billboard.engine.tracks import DEFAULT_TRACKS
from tests.support.processes import start_billboard
from tests.support.relay import PUBLISHER


def notes_by_track(path: Path, until_s: float = 1e9) -> dict[str, list[tuple[int, int, int]]]:
    """track name → [(tick, channel, note)] of note-ons before `until_s`."""
    midi = mido.MidiFile(path)
    limit = mido.second2tick(until_s, midi.ticks_per_beat, 500_000)
    out: dict[str, list[tuple[int, int, int]]] = {}
    for track in midi.tracks:
        tick, sounding, notes = 0, 0, []
        for msg in track:
            tick += msg.time
            if msg.type == "note_on" and msg.velocity > 0:
                sounding += 1
                if tick < limit:
                    notes.append((tick, msg.channel, msg.note))
            elif msg.type == "note_off" or (msg.type == "note_on" and msg.velocity == 0):
                sounding -= 1
        assert sounding == 0, f"a note of {track.name} never ends"
        out[track.name] = notes
    return out


async def play_crowd(port: int) -> list[dict[str, Any]]:
    """Two callers and a seed caller play; returns what the billboard said on :state."""
    said: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as session:
        watcher = await session.ws_connect(f"ws://127.0.0.1:{port}/ws")
        await watcher.send_str('{"type":"subscriber","id":"dialjam:state"}')
        pub = await session.ws_connect(f"ws://127.0.0.1:{port}/ws?token={PUBLISHER}")

        async def publish(data: dict[str, Any]) -> None:
            frame = {"type": "publisher", "id": "dialjam", "data": data}
            await pub.send_str(orjson.dumps(frame).decode())

        await asyncio.sleep(0.5)
        await publish({"event": "join", "caller": "c-leader", "source": "web"})
        await publish(
            {"event": "join", "caller": "c-bassist", "source": "twilio", "display": "…34"}
        )
        for n in range(8):
            await publish({"event": "digit", "caller": "c-leader", "digit": "12"[n % 2]})
            await publish({"event": "digit", "caller": "c-bassist", "digit": "135"[n % 3]})
            await asyncio.sleep(0.15)
        await publish({"caller_id": "4155551212", "command": "5"})  # the 2010 form
        deadline = asyncio.get_running_loop().time() + 3
        while asyncio.get_running_loop().time() < deadline:
            try:
                msg = await asyncio.wait_for(watcher.receive(), 0.5)
            except TimeoutError:
                continue
            if msg.type is aiohttp.WSMsgType.TEXT:
                said.append(orjson.loads(msg.data))
    return said


async def test_a_headless_billboard_plays_records_and_replays_simulated_callers(
    tmp_path: Path,
) -> None:
    live_mid, replay_mid = tmp_path / "live.mid", tmp_path / "replay.mid"
    events = tmp_path / "events.jsonl"
    proc, port = await start_billboard(
        "--duration", "7", "--record", str(live_mid), "--log-events", str(events)
    )
    try:
        said = await play_crowd(port)
        assert await asyncio.wait_for(proc.wait(), 20) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
    assert proc.stderr is not None
    stderr = (await proc.stderr.read()).decode()
    assert "Traceback" not in stderr

    # The billboard told each caller their instrument, and published its state.
    assigns = {(s["caller"], s["track"]) for s in said if s.get("event") == "assign"}
    assert {("c-leader", "lead"), ("c-bassist", "bass")} <= assigns
    states = [s for s in said if s.get("event") == "state"]
    assert states and states[-1]["tracks"][1]["display"] == "…34"
    # The seed caller got a track under a pseudonym; the number is nowhere.
    assert any(s.get("track") == "drums" for s in said if s.get("event") == "assign")
    for text in (repr(said), events.read_text(), stderr):
        assert "4155551212" not in text

    live = notes_by_track(live_mid)
    # The bed's kick, and the open hat of the seed caller's 5 on the drums.
    assert {note for _, channel, note in live["drums"] if channel == 9} >= {36, 46}
    for track, channel in (("bass", 0), ("lead", 2)):
        pitches = {note % 12 for _, ch, note in live[track] if ch == channel}
        assert pitches and pitches <= {0, 2, 4, 5, 7, 9, 11}  # C major, always
    # The bed held the chord on the pad nobody took, on the bed pad's own channel 13.
    assert live["bed pad"] and {channel for _, channel, _ in live["bed pad"]} == {12}
    assert not live["pad"]  # nobody played the pad track itself

    # The event log plays back to the same notes.
    proc, _ = await start_billboard(
        "--duration", "7", "--replay", str(events), "--record", str(replay_mid)
    )
    assert await asyncio.wait_for(proc.wait(), 20) == 0
    assert notes_by_track(replay_mid, until_s=6.0) == notes_by_track(live_mid, until_s=6.0)


async def test_sigterm_stops_the_billboard_cleanly(tmp_path: Path) -> None:
    proc, port = await start_billboard("--record", str(tmp_path / "s.mid"))
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(f"ws://127.0.0.1:{port}/ws")
        proc.send_signal(signal.SIGTERM)
        msg = await asyncio.wait_for(ws.receive(), 10)
        assert msg.type is aiohttp.WSMsgType.CLOSE and msg.data == 1001
    assert await asyncio.wait_for(proc.wait(), 15) == 0
    assert proc.stderr is not None
    assert "Traceback" not in (await proc.stderr.read()).decode()
    assert mido.MidiFile(tmp_path / "s.mid").tracks  # the recording was written


async def test_a_60_second_show_with_a_crowd_ends_without_error_or_stuck_note(
    tmp_path: Path,
) -> None:
    import random

    recording = tmp_path / "crowd.mid"
    proc, port = await start_billboard("--duration", "62", "--record", str(recording))
    rng = random.Random(7)
    callers = [f"c-crowd{n:02d}" for n in range(12)]  # 8 play, 4 wait in line
    try:
        async with aiohttp.ClientSession() as session:
            pub = await session.ws_connect(f"ws://127.0.0.1:{port}/ws?token={PUBLISHER}")

            async def publish(data: dict[str, Any]) -> None:
                frame = {"type": "publisher", "id": "dialjam", "data": data}
                await pub.send_str(orjson.dumps(frame).decode())

            for caller in callers:
                await publish({"event": "join", "caller": caller})
            loop = asyncio.get_running_loop()
            end = loop.time() + 58
            while loop.time() < end:
                caller = rng.choice(callers)
                roll = rng.random()
                if roll < 0.01:
                    await publish({"event": "leave", "caller": caller, "reason": "hangup"})
                elif roll < 0.02:
                    await publish({"event": "join", "caller": caller})
                else:
                    digit = rng.choice("0123456789*#")
                    await publish({"event": "digit", "caller": caller, "digit": digit})
                await asyncio.sleep(rng.uniform(0.01, 0.09))
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
    assert proc.stderr is not None
    stderr = (await proc.stderr.read()).decode()
    assert "Traceback" not in stderr and " ERROR " not in stderr
    played = notes_by_track(recording)  # asserts that every note ends
    assert sum(len(notes) for notes in played.values()) > 500
    # Every instrument played (the groove bed's own tracks may sound beside them).
    instruments = {name for name, notes in played.items() if notes and not name.startswith("bed ")}
    assert instruments == {t.name for t in DEFAULT_TRACKS}
