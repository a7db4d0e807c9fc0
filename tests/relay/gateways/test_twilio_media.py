"""The music back down a Twilio stream, without I/O: what one stream queues and writes
(`MediaOut`: media as Twilio documents it, a bounded queue, marks, Twilio's backlog
and the clear), and the Twilio stand-in's playback that echoes the marks
(`Playback`). Every clock is a number passed in."""

from __future__ import annotations

import base64
import itertools

import orjson
import pytest

from relay.gateways.twilio_media import (
    BACKLOG_BOUND_S,
    MARK_EVERY,
    MAX_MARKS,
    QUEUE_FRAMES,
    MediaOut,
    MediaStats,
)
from relay.rehearsal.twilio_playback import Playback, Sent, read_sent

SID = "MZ18ad3ab5a668481ce02b83e7395059f0"
TICK = 0.02


def frame(n: int) -> bytes:
    return bytes((n % 256,)) * 160


def drain(out: MediaOut, now: float) -> list[dict[str, object]]:
    written = []
    while (text := out.take(now)) is not None:
        written.append(orjson.loads(text))
    return written


Written = list[tuple[float, dict[str, object]]]


def run(out: MediaOut, ticks: int, start: float = 0.0) -> tuple[Written, float]:
    """`ticks` frames played and written as they come: each message with when it
    was written, and the clock at the last tick."""
    written: Written = []
    now = start
    for n in range(ticks):
        now = start + n * TICK
        out.play(frame(n), now)
        written += [(now, message) for message in drain(out, now)]
    return written, now


def events(written: Written) -> list[object]:
    return [message["event"] for _, message in written]


def marks(written: Written) -> list[str]:
    return [m["mark"]["name"] for _, m in written if m["event"] == "mark"]  # type: ignore[index]


def when(written: Written, event: str) -> list[float]:
    return [t for t, message in written if message["event"] == event]


def silent_after_one_echo(seconds: int) -> tuple[MediaOut, Written, float]:
    """A stream whose first mark came back promptly, and then no echo for `seconds`."""
    out = MediaOut(SID, MediaStats())
    _, now = run(out, MARK_EVERY)
    out.echoed("dj1", now + 0.02)  # marks work on this stream
    written, now = run(out, seconds * MARK_EVERY, start=now + TICK)
    return out, written, now


def test_a_frame_goes_out_as_twilios_media_message_and_nothing_goes_out_for_none() -> None:
    out = MediaOut(SID, MediaStats())
    assert out.play(None, 0.0) is False and out.take(0.0) is None
    assert out.play(frame(7), 0.02) is True
    assert drain(out, 0.02) == [
        {
            "event": "media",
            "streamSid": SID,
            "media": {"payload": base64.b64encode(frame(7)).decode()},
        }
    ]
    assert out.stats.frames_sent == 1


def test_a_mark_follows_every_second_of_media_and_its_echo_is_twilios_backlog() -> None:
    stats = MediaStats()
    out = MediaOut(SID, stats)
    written, now = run(out, 2 * MARK_EVERY)
    assert events(written).count("media") == 2 * MARK_EVERY
    assert written[MARK_EVERY][1] == {"event": "mark", "streamSid": SID, "mark": {"name": "dj1"}}
    assert marks(written) == ["dj1", "dj2"]
    out.echoed("dj1", when(written, "mark")[0] + 0.120)
    out.echoed("dj2", now + 0.080)
    out.echoed("dj2", now + 0.500)  # a second echo of one mark measures nothing
    out.echoed("someone-elses", now)
    assert [round(ms) for ms in stats.backlog_ms] == [120, 80]
    figures = stats.figures()
    assert figures["marks_sent"] == 2 and figures["marks_echoed"] == 2
    assert figures["backlog_ms_p50"] == 120.0 and figures["backlog_ms_p99"] == 120.0
    assert figures["clears"] == 0


def test_a_slow_socket_keeps_the_newest_200_ms_and_counts_what_it_dropped() -> None:
    out = MediaOut(SID, MediaStats())
    for n in range(QUEUE_FRAMES + 5):  # nothing written: the socket is stuck
        out.play(frame(n), n * TICK)
    written = drain(out, 1.0)
    payloads = [base64.b64decode(m["media"]["payload"]) for m in written]  # type: ignore[index]
    assert payloads == [frame(n) for n in range(5, QUEUE_FRAMES + 5)]
    assert out.stats.frames_dropped == 5 and out.stats.frames_sent == QUEUE_FRAMES


def test_a_socket_stuck_for_an_hour_holds_no_more_than_the_bound() -> None:
    out, _, now = silent_after_one_echo(1)  # a clear is due: the socket sticks with it
    written_before = out.stats.frames_sent
    for n in range(1, 3600 * 50):  # an hour of ticks, nothing written
        out.play(frame(n), now + n * TICK)
    written = drain(out, now + 3600)
    assert len(written) <= QUEUE_FRAMES + 2
    assert [m["event"] for m in written].count("clear") == 1  # one, first
    assert written[0]["event"] == "clear"
    assert out.stats.frames_sent - written_before == QUEUE_FRAMES


def test_an_echo_later_than_the_bound_sends_clear_ahead_of_the_queued_media() -> None:
    stats = MediaStats()
    out = MediaOut(SID, stats)
    written, now = run(out, MARK_EVERY)
    assert marks(written) == ["dj1"]
    out.echoed("dj1", now + BACKLOG_BOUND_S + 0.1)  # Twilio held 600 ms ahead of it
    now += BACKLOG_BOUND_S + 0.12
    out.play(frame(1), now)
    assert [m["event"] for m in drain(out, now)] == ["clear", "media"]
    assert stats.clears == 1
    assert out.backlog_s(now) == 0.0  # cleared: the next echo will tell


def test_a_twilio_that_stops_echoing_is_cleared_once_its_oldest_mark_waits_past_the_bound() -> None:
    out, written, _ = silent_after_one_echo(2)  # dj2 and dj3 get no echo
    assert events(written).count("clear") == 1 and out.stats.clears == 1
    # dj2 went out; the clear came once it had waited past the bound, not before.
    waited = when(written, "clear")[0] - when(written, "mark")[0]
    assert BACKLOG_BOUND_S < waited <= BACKLOG_BOUND_S + 2 * TICK


def test_clears_back_off_while_twilio_stays_silent_and_an_echo_resets_them() -> None:
    out, written, now = silent_after_one_echo(20)
    times = when(written, "clear")
    gaps = [round(b - a, 2) for a, b in itertools.pairwise(times)]
    assert len(times) >= 3 and gaps == sorted(gaps) and gaps[-1] > 2 * gaps[0]
    out.echoed(marks(written)[-1], now + 0.02)  # Twilio answers again: backoff starts over
    again, _ = run(out, 3 * MARK_EVERY, start=now + TICK)
    assert events(again).count("clear") == 0  # the echo was prompt: no backlog


def test_a_stream_whose_marks_never_come_back_is_never_cleared() -> None:
    """Marks may not work at all (a Twilio-compatible peer without them): clearing
    then would only chop the music."""
    stats = MediaStats()
    out = MediaOut(SID, stats)
    written, _ = run(out, 10 * MARK_EVERY)
    assert "clear" not in events(written)
    assert stats.marks_sent == 10 and stats.marks_echoed == 0


def test_marks_awaiting_an_echo_are_bounded() -> None:
    stats = MediaStats()
    out = MediaOut(SID, stats, mark_every=1)
    run(out, MAX_MARKS + 4)
    assert stats.marks_unanswered == 4


def test_the_cleared_marks_echoes_are_no_measure_of_playback() -> None:
    out, written, _ = silent_after_one_echo(2)
    cleared_at = when(written, "clear")[0]
    held = [m["mark"]["name"] for t, m in written if m["event"] == "mark" and t < cleared_at]
    assert held == ["dj2"]
    out.echoed("dj2", cleared_at + 0.01)  # a clear makes Twilio answer the marks it held
    assert len(out.stats.backlog_ms) == 1


# -- the stand-in's playback --


def sent(text: dict[str, object]) -> Sent:
    read = read_sent(orjson.dumps(text))
    assert read is not None
    return read


def media(n: int = 0) -> Sent:
    return sent(
        {
            "event": "media",
            "streamSid": SID,
            "media": {"payload": base64.b64encode(frame(n)).decode()},
        }
    )


def mark(name: str) -> Sent:
    return sent({"event": "mark", "streamSid": SID, "mark": {"name": name}})


def test_the_stand_in_plays_media_in_real_time_and_echoes_a_mark_when_what_precedes_it_played() -> (
    None
):
    playback = Playback()
    for n in range(5):  # 100 ms of audio, all at once
        assert playback.take(media(n), 1.0) == []
    assert playback.take(mark("m1"), 1.0) == []
    assert playback.backlog(1.0) == pytest.approx(0.1)
    assert playback.due(1.09) == [] and playback.due(1.1) == ["m1"]
    assert playback.take(mark("m2"), 1.2) == ["m2"]  # nothing before it left to play


def test_the_stand_in_echoes_waiting_marks_at_once_on_clear_and_its_buffer_empties() -> None:
    playback = Playback(speed=0.5)
    for n in range(5):
        playback.take(media(n), 0.0)
    playback.take(mark("m1"), 0.0)
    assert playback.backlog(0.0) == pytest.approx(0.2)  # half speed: 100 ms take 200 ms
    assert playback.take(sent({"event": "clear", "streamSid": SID}), 0.05) == ["m1"]
    assert playback.backlog(0.05) == 0.0 and playback.clears == 1


def test_the_stand_in_reads_only_what_twilio_takes() -> None:
    assert read_sent(b"not json") is None
    assert read_sent(orjson.dumps({"event": "media", "media": {"payload": "AAAA"}})) is None
    assert (
        read_sent(orjson.dumps({"event": "media", "streamSid": SID, "media": {"payload": "@@"}}))
        is None
    )
    assert read_sent(orjson.dumps({"event": "mark", "streamSid": SID, "mark": {}})) is None
    assert read_sent(orjson.dumps({"event": "hello", "streamSid": SID})) is None
