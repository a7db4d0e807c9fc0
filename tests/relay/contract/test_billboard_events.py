"""The billboard's side of the contract: ``assign``, ``leave`` and ``state`` on
``NAME:state`` are written by the contract and read back by it, totally; the channels'
names and rules, the key set and a number's digits each have one definition."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relay.contract import channels
from relay.contract.events import (
    DTMF_KEYS,
    KEYPAD_KEYS,
    KEYS,
    PLAY_KEYS,
    Assign,
    Left,
    Light,
    Refused,
    State,
    TrackState,
    Waiting,
    read_billboard,
    to_data,
)
from relay.contract.privacy import masked, normalise_number, number_digits

FUZZ = settings(
    max_examples=300, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
)
NAMES = st.sampled_from(
    ["event", "caller", "track", "color", "line", "reason", "tempo", "key", "scale", "style",
     "step", "facade", "tracks", "lit", "waiting", "line_length", "hud", "paused", "attract"]
)  # fmt: skip
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
    | st.sampled_from(["assign", "leave", "state", "kicked", "#8a5cf6", "c-bcdfghjkmn"])
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(NAMES, inner, max_size=6),
    max_leaves=24,
)

STATE = State(
    tempo=112.04,
    key="C",
    scale="major",
    step=37,
    floors=7,
    bays=8,
    tracks=(
        TrackState("bass", "#8a5cf6", "c-bcdfghjkmn", "…12", False),
        TrackState("drums", "#f97316"),
    ),
    line=("c-bvvcbdcdt",),
    waiting=(Waiting("c-bvvcbdcdt", "Ana"),),
    line_length=3,
    lit=(Light(2, 3, "#8a5cf6", 0.8049),),
    paused=True,
    hud={"fps": 60, "midi_port": "FluidSynth", "latency_ms": 2.1},
    style="house",
)


def test_designs_billboard_shapes_are_written_and_read_back() -> None:
    seated = Assign("c-pfbnkdsvqt", "bass", "#8a5cf6", 0)
    assert to_data(seated) == {
        "event": "assign",
        "caller": "c-pfbnkdsvqt",
        "track": "bass",
        "color": "#8a5cf6",
        "line": 0,
    }
    waiting = Assign("c-bvvcbdcdt", None, None, 3)
    kicked = Left("c-pfbnkdsvqt", "kicked", 120.0)
    assert to_data(kicked) == {
        "event": "leave", "caller": "c-pfbnkdsvqt", "reason": "kicked", "ban_s": 120
    }  # fmt: skip
    turn = Left("c-pfbnkdsvqt", "turn")
    assert to_data(turn) == {"event": "leave", "caller": "c-pfbnkdsvqt", "reason": "turn"}
    for event in (seated, waiting, kicked, turn):
        assert read_billboard(orjson.loads(orjson.dumps(to_data(event)))) == event


def test_a_state_is_written_in_designs_shape_and_read_back() -> None:
    data = STATE.to_data()
    assert data["event"] == "state"
    assert data["tempo"] == 112.0 and data["facade"] == {"floors": 7, "bays": 8}
    assert data["lit"] == [[2, 3, "#8a5cf6", 0.8]]
    assert data["waiting"] == [{"caller": "c-bvvcbdcdt", "display": "Ana"}]
    assert data["tracks"][1] == {
        "name": "drums",
        "color": "#f97316",
        "caller": None,
        "display": None,
        "muted": False,
    }
    assert data["style"] == "house"
    again = read_billboard(orjson.loads(orjson.dumps(data)))
    assert isinstance(again, State)
    assert again.to_data() == data


def test_a_state_without_a_style_is_read_from_an_older_billboard_but_a_wrong_one_is_not() -> None:
    older = {k: v for k, v in STATE.to_data().items() if k != "style"}
    state = read_billboard(older)
    assert isinstance(state, State) and state.style is None and state.key == "C"
    assert isinstance(read_billboard({**older, "style": ["house"]}), Refused)


@pytest.mark.parametrize(
    "data",
    [
        {"event": "assign", "caller": "4155551212", "track": "bass", "color": "#8a5cf6"},
        {"event": "assign", "caller": "c-1", "track": "bass", "color": "url(x)"},
        {"event": "assign", "caller": "c-1", "track": None, "color": None, "line": -1},
        {"event": "leave", "caller": "c-1", "reason": "bored"},
        {"event": "digit", "caller": "c-1", "digit": "5"},
        {**STATE.to_data(), "facade": {"floors": 0, "bays": 8}},
        {**STATE.to_data(), "lit": [[9, 0, "#ffffff", 1.0]]},  # no floor 9 on a 7-floor facade
        {**STATE.to_data(), "tempo": "fast"},
        {**STATE.to_data(), "tracks": [{"name": "x", "color": "red"}]},
    ],
)
def test_what_the_billboard_would_never_send_is_refused(data: dict[str, Any]) -> None:
    assert isinstance(read_billboard(data), Refused)


@FUZZ
@given(JSON)
def test_any_json_value_on_the_state_channel_is_read_or_refused_never_raised(value: Any) -> None:
    result = read_billboard(value)
    assert isinstance(result, Assign | Left | State | Refused)
    if not isinstance(result, Refused):
        assert read_billboard(orjson.loads(orjson.dumps(to_data(result)))) == result


def test_a_label_on_the_state_channel_never_carries_a_number() -> None:
    data = STATE.to_data()
    data["tracks"][0]["display"] = "+1 415 555 1212"
    state = read_billboard(data)
    assert isinstance(state, State) and state.tracks[0].display is None


def test_the_installations_channels_and_who_publishes_on_them() -> None:
    assert channels.installation_channels("jam") == {
        "jam",
        "jam:state",
        "jam:control",
        "jam:callers",
    }
    assert channels.state_channel("jam") == "jam:state"
    assert channels.control_channel("jam") == "jam:control"
    assert channels.callers_channel("jam") == "jam:callers"
    assert channels.required_role("jam:control") == "operator"
    assert channels.required_role("jam:callers") == "billboard"
    assert channels.valid_installation_name("jam")
    for bad in ("jam:state", "jam:control", "jam:callers", "", "x" * 65, "a b", None, 5):
        assert not channels.valid_installation_name(bad)


def test_the_key_set_is_spelled_once_in_rfc_4733s_order() -> None:
    assert DTMF_KEYS == "0123456789*#ABCD"
    assert DTMF_KEYS[:12] == KEYPAD_KEYS
    assert set(DTMF_KEYS) == KEYS and set(KEYPAD_KEYS) == PLAY_KEYS


def test_the_digits_of_a_number_are_taken_one_way_everywhere() -> None:
    assert number_digits("+1 (415) 555-1212") == "14155551212"
    assert number_digits("anonymous") == ""
    assert normalise_number("+1 (415) 555-1212") == "14155551212"
    assert masked("+1 (415) 555-1212") == "…12"
