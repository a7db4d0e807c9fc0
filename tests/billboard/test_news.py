"""What each caller hears on NAME:callers (billboard/news.py), from a real engine's
updates and scenes, in simulated time: small, addressed, and naming nobody else."""

from __future__ import annotations

import itertools

from billboard.engine import Engine
from billboard.engine.engine import EngineConfig
from billboard.news import News
from relay.contract.callers import Notice, read_callers
from relay.contract.events import Command, Digit, Join, Refused


def test_a_seated_caller_hears_their_track_how_its_keys_play_and_where_it_is() -> None:
    engine = Engine(EngineConfig(), start=0.0)
    news = News(engine.config.tracks)
    news.scene(engine.scene(0.0))
    engine.handle(Join("c-ada"), 0.1)
    told = news.updates(engine.take_updates())
    assert told[0]["caller"] == "c-ada" and told[0]["mode"] in ("scale", "drums", "chord")
    engine.handle(Digit("c-ada", "5"), 0.2)
    engine.advance(0.5)
    regions = [d for d in news.scene(engine.scene(0.5)) if d["event"] == "assign"]
    assert regions and regions[0]["region"][1] >= 1  # (first bay, how many)
    for data in told + regions:
        assert not isinstance(read_callers(data), Refused)


def test_the_digest_goes_out_on_change_at_most_once_a_second_and_names_nobody() -> None:
    engine = Engine(EngineConfig(), start=0.0)
    news = News(engine.config.tracks)
    digests = []
    for n in range(100):  # ten seconds of scenes at 10 Hz
        now = n / 10
        if n == 25:
            engine.handle(Join("c-bo"), now)
            news.updates(engine.take_updates())
        engine.advance(now)
        digests += [(now, d) for d in news.scene(engine.scene(now)) if d["event"] == "digest"]
    times = [t for t, _ in digests]
    assert times[0] == 0.0 and all(b - a >= 1.0 for a, b in itertools.pairwise(times))
    assert [d["playing"] for _, d in digests] == [0, 1]  # the join, then nothing changed
    assert all("c-" not in str(d) for _, d in digests)


def test_a_kick_says_for_how_long_and_a_wait_while_paused_says_why() -> None:
    engine = Engine(EngineConfig(kick_ban_s=90.0), start=0.0)
    news = News(engine.config.tracks)
    engine.handle(Join("c-rude"), 0.0)
    engine.handle(Command("kick", {"caller": "c-rude"}), 1.0)
    told = news.updates(engine.take_updates())
    assert told[-1] == {"event": "leave", "caller": "c-rude", "reason": "kicked", "ban_s": 90}
    engine.handle(Command("pause", {"on": True}), 2.0)
    news.scene(engine.scene(2.0))
    engine.handle(Join("c-patient"), 2.5)
    told = news.updates(engine.take_updates())
    assert told == [
        {"event": "assign", "caller": "c-patient", "track": None, "color": None, "line": 1},
        {"event": "notice", "caller": "c-patient", "code": "paused"},
    ]


def test_an_undone_kick_is_told_to_that_caller_alone_as_a_notice() -> None:
    engine = Engine(EngineConfig(kick_ban_s=90.0), start=0.0)
    news = News(engine.config.tracks)
    engine.handle(Join("c-rude"), 0.0)
    engine.handle(Command("kick", {"caller": "c-rude"}), 1.0)
    news.updates(engine.take_updates())
    engine.handle(Command("unban", {"caller": "c-rude"}), 5.0)
    told = news.updates(engine.take_updates())
    assert told == [{"event": "notice", "caller": "c-rude", "code": "unbanned"}]
    assert read_callers(told[0]) == Notice("c-rude", "unbanned")
