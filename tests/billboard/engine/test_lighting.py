"""The whole building lights up: every bay shared among the tracks that sound."""

from __future__ import annotations

from billboard.engine import Digit, Engine, EngineConfig, Join
from billboard.engine.lighting import regions
from billboard.engine.scene import Facade


def test_regions_share_every_bay_in_track_order_by_weight() -> None:
    assert regions(14, [3, 1, 1, 1]) == [(0, 6), (6, 3), (9, 3), (12, 2)]
    assert regions(8, [0, 3, 0, 3]) == [None, (0, 4), None, (4, 4)]
    assert regions(14, [1] * 8) == [
        (0, 2), (2, 2), (4, 2), (6, 2), (8, 2), (10, 2), (12, 1), (13, 1)
    ]  # fmt: skip
    for bays in range(1, 20):
        for weights in ([3, 1, 1, 1, 0, 0, 0, 0], [3] * 8, [2, 0, 1], [1] * 12):
            made = [r for r in regions(bays, weights) if r is not None]
            if len(made) <= bays:  # contiguous, covering every bay once
                assert [bay for first, n in made for bay in range(first, first + n)] == list(
                    range(bays)
                )
            else:  # more tracks than bays: one bay each, neighbours sharing
                assert all(n == 1 and 0 <= first < bays for first, n in made)


def test_with_nobody_playing_the_beds_parts_light_the_whole_building() -> None:
    e = Engine(EngineConfig(bpm=120, facade=Facade(6, 14)), start=0.0)
    bays_lit: set[int] = set()
    for k in range(1, 320):  # 16 s, every 50 ms
        e.advance(k * 0.05, 0.1)
        bays_lit |= {w.bay for w in e.scene(k * 0.05).lit}
    assert bays_lit == set(range(14))
    regions_now = [t.region for t in e.scene(16.0).tracks]
    sounding = [t.spec.name for t, r in zip(e.tracks, regions_now, strict=True) if r]
    assert sounding == ["drums", "bass", "pad"]  # the intro's parts (its chords are the pad)
    assert all(w.intensity <= 0.5 + 1e-9 for w in e.scene(16.0).lit)  # the bed: half bright


def test_a_players_region_grows_when_they_join_and_their_notes_walk_across_it() -> None:
    e = Engine(EngineConfig(bpm=120, facade=Facade(6, 14)), start=0.0)
    e.advance(1.0, 0.1)
    assert e.scene(1.0).tracks[3].region is None  # the lead: silent, no bays
    e.handle(Join("c-aa", nick="Ana"), 1.0)  # takes the lead
    lead = e.scene(1.0).tracks[3]
    assert lead.region is not None and lead.region[1] >= 4  # the widest region
    assert lead.since == 1.0  # the moment of the join, for the screen
    first, width = lead.region
    bays = set()
    for k in range(8):
        at = 1.1 + k * 0.125
        e.handle(Digit("c-aa", "5"), at)
        e.advance(at, 0.1)
        bays |= {w.bay for w in e.scene(at + 0.13).lit if w.color == lead.color}
    assert len(bays) >= 3 and bays <= set(range(first, first + width))


def test_eight_people_playing_for_30_s_light_every_bay_and_most_of_the_windows() -> None:
    from relay.rehearsal.plan import CrowdOptions, plan_crowd

    e = Engine(EngineConfig(facade=Facade(6, 14)), start=0.0)
    options = CrowdOptions(callers=8, rate=1.4, duration=30, ramp=5, style="human", check=False)
    events: list[tuple[float, object]] = []
    for plan in plan_crowd(options, 7):
        caller = f"c-{plan.index:04x}"
        events.append((plan.start, Join(caller)))
        events += [(plan.start + p.at, Digit(caller, p.key)) for p in plan.presses]
    events.sort(key=lambda item: item[0])
    windows: set[tuple[int, int]] = set()
    now, tick = 0.0, 0.05
    for at, event in events:
        while now < at:  # the screen looks 20 times a second
            e.advance(now, 0.1)
            windows |= {(w.floor, w.bay) for w in e.scene(now).lit}
            now += tick
        e.handle(event, at)  # type: ignore[arg-type]
    assert now >= 30.0 - 5
    assert {bay for _, bay in windows} == set(range(14))  # every bay, at least once
    assert len(windows) > 84 / 2, len(windows)  # more than half the windows at some moment
