"""The contract's readers: the protocol's shapes in, one canonical shape out, and any
JSON value from the street read or refused, never raised."""

from __future__ import annotations

import math
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relay.contract.events import (
    COMMANDS,
    SCALE_NAMES,
    STYLE_NAMES,
    Command,
    Digit,
    Join,
    Leave,
    Refused,
    SeedDigit,
    is_caller_id,
    read_command,
    read_input,
    read_public,
    seed_data,
    to_data,
)
from relay.contract.privacy import masked, pseudonym, random_pseudonym

KEY = b"test key"


def pseudonymise(number: str) -> str:
    return pseudonym(number, KEY)


# Any JSON value (what orjson can hand a reader), biased towards the contract's names.
NAMES = st.sampled_from(
    ["event", "caller", "digit", "reason", "name", "args", "nick", "display", "source",
     "command", "caller_id", "ani", "bpm", "key", "on"]
)  # fmt: skip
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=30)
    | st.sampled_from(
        ["join", "digit", "leave", "command", "tempo", "kick", "style", "house", "5", "#", "c-1"]
    )
)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(NAMES | st.text(max_size=8), inner, max_size=6)
    ),
    max_leaves=20,
)
FUZZ = settings(
    max_examples=300, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
)


@FUZZ
@given(JSON)
def test_any_json_value_is_read_or_refused_never_raised(value: Any) -> None:
    for result in (read_public(value), read_public(value, pseudonymise), read_command(value)):
        assert isinstance(result, Join | Digit | Leave | SeedDigit | Command | Refused)
    read_input(value)


@FUZZ
@given(st.dictionaries(NAMES, JSON, max_size=6))
def test_an_event_read_is_written_back_in_the_shape_it_is_read_from(value: dict[str, Any]) -> None:
    event = read_public(value, pseudonymise)
    if isinstance(event, Join | Digit | Leave):
        assert read_public(orjson.loads(orjson.dumps(to_data(event)))) == event
        assert is_caller_id(event.caller)  # never a number


@FUZZ
@given(st.dictionaries(NAMES, JSON, max_size=6))
def test_a_command_read_has_the_args_its_name_needs(value: dict[str, Any]) -> None:
    command = read_command({**value, "event": "command"})
    if isinstance(command, Refused):
        return
    assert command.name in COMMANDS
    args = command.args
    if command.name in ("kick", "unban", "mute"):
        assert is_caller_id(args["caller"])
    if command.name == "tempo":
        assert isinstance(args["bpm"], float) and math.isfinite(args["bpm"])
    if command.name in ("mute", "pause"):
        assert isinstance(args["on"], bool)
    assert read_command(to_data(command)) == command


def test_designs_shapes_are_read() -> None:
    assert read_public({"event": "digit", "caller": "c-pfbnkdsvqt", "digit": "5"}) == Digit(
        "c-pfbnkdsvqt", "5"
    )
    assert read_public({"event": "join", "caller": "c-1", "source": "twilio"}) == Join(
        "c-1", "twilio"
    )
    assert read_public({"event": "leave", "caller": "c-1", "reason": "weird"}) == Leave("c-1")
    assert read_command({"event": "command", "name": "tempo", "args": {"bpm": 90}}) == Command(
        "tempo", {"bpm": 90.0}
    )
    assert read_public({"caller_id": "4155551212", "command": 5}) == SeedDigit("4155551212", "5")


@pytest.mark.parametrize(
    ("value", "code"),
    [
        # The attacks that ended the night: unhashable values where a name was expected.
        ({"event": "leave", "caller": "c-x", "reason": {}}, None),  # read, reason: hangup
        ({"event": "command", "name": []}, "wrong_channel"),
        ({"event": "digit", "caller": "c-1", "digit": "55"}, "bad_digit"),
        ({"event": "digit", "caller": "c-1", "digit": "A"}, "ignored_key"),
        ({"event": "digit", "caller": None, "digit": "5"}, "bad_caller"),
        ({"event": "join", "caller": "c-15550003333"}, "bad_caller"),  # a number in disguise
        ({"event": "dance", "caller": "c-1"}, "bad_event"),
        ({"event": ["join"]}, "bad_event"),
        ({}, "bad_event"),
        ([], "bad_event"),
        ({"caller_id": {}, "command": "5"}, "bad_seed"),
        ({"caller_id": "4155551212", "command": "55"}, "bad_seed"),
    ],
)
def test_what_is_not_an_event_is_refused_with_a_code(value: Any, code: str | None) -> None:
    result = read_public(value)
    if code is None:
        assert result == Leave("c-x", "hangup")
    else:
        assert isinstance(result, Refused) and result.code == code and result.message


def test_a_number_in_a_caller_id_becomes_a_pseudonym_or_is_refused() -> None:
    for number in ("4155551212", "+14155551212", "c-15550003333"):
        event = read_public({"event": "join", "caller": number}, pseudonymise)
        assert event == Join(pseudonymise(number), "web", masked(number))
        assert isinstance(read_public({"event": "join", "caller": number}), Refused)


def test_a_number_hidden_in_a_source_is_not_a_source() -> None:
    for source in ("15550103333", "555-010-3333", "4155551212"):
        event = read_public({"event": "join", "caller": "c-x", "source": source})
        assert event == Join("c-x", "web")
    assert read_public({"event": "digit", "caller": "c-x", "digit": "1", "source": "sip2"}) == (
        Digit("c-x", "1", "sip2")
    )


@pytest.mark.parametrize(
    "data",
    [
        {"event": "command", "name": "tempo", "args": {"bpm": float("inf")}},
        {"event": "command", "name": "tempo", "args": {"bpm": 10**30}},
        {"event": "command", "name": "tempo", "args": {"bpm": True}},
        {"event": "command", "name": "kick", "args": {"caller": ["c-1"]}},
        {"event": "command", "name": "kick", "args": {"caller": "4155551212"}},
        {"event": "command", "name": "unban", "args": {"caller": "4155551212"}},
        {"event": "command", "name": "unban", "args": {}},
        {"event": "command", "name": "mute", "args": {"caller": "c-1", "on": "yes"}},
        {"event": "command", "name": "key", "args": {"key": "C" * 100}},
        {"event": "command", "name": "scale", "args": []},
        {"event": "command", "name": "scale", "args": {"name": "nonsense"}},
        {"event": "command", "name": "style", "args": {"name": "polka"}},
        {"event": "command", "name": "style", "args": {"name": ["pop"]}},
        {"event": "command", "name": "style", "args": {}},
        {"event": "command", "name": "format_disk"},
        {"event": "digit", "caller": "c-1", "digit": "5"},
    ],
)
def test_a_command_with_the_wrong_args_is_refused(data: dict[str, Any]) -> None:
    assert isinstance(read_command(data), Refused)


def test_a_scale_command_names_one_of_the_scales_the_engine_plays() -> None:
    for name in SCALE_NAMES:
        assert read_command({"event": "command", "name": "scale", "args": {"name": name}}) == (
            Command("scale", {"name": name})
        )
    refused = read_command({"event": "command", "name": "scale", "args": {"name": "lydian"}})
    assert isinstance(refused, Refused) and "minor_pentatonic" in refused.message


def test_a_style_command_names_one_of_the_beds_styles_or_none_and_says_which_if_not() -> None:
    for name in STYLE_NAMES:
        assert read_command({"event": "command", "name": "style", "args": {"name": name}}) == (
            Command("style", {"name": name})
        )
    refused = read_command({"event": "command", "name": "style", "args": {"name": "Polka"}})
    assert isinstance(refused, Refused) and refused.code == "bad_command"
    assert refused.message == "style needs one of pop, house, hiphop, none"


def test_pseudonyms_hold_no_digits_so_no_number_hides_in_them() -> None:
    made = [pseudonym(str(n), KEY) for n in range(2000)] + [random_pseudonym() for _ in range(200)]
    assert all(is_caller_id(p) and not any(ch.isdigit() for ch in p[2:]) for p in made)
    assert len(set(made)) == len(made)


def test_the_seed_form_keeps_its_shape_with_a_pseudonym() -> None:
    data = seed_data("c-bcdfghjkmn", "5", "…12")
    assert data == {"caller_id": "c-bcdfghjkmn", "command": "5", "display": "…12"}
    assert read_public(data) == SeedDigit("c-bcdfghjkmn", "5")


def test_end_calls_takes_no_args_and_is_one_shape_whatever_else_comes_with_it() -> None:
    for args in ({}, None, {"caller": "c-abcdefghij"}, {"on": True}):
        data = {"event": "command", "name": "end_calls", "args": args}
        assert read_command(data) == Command("end_calls", {})
    assert read_command({"event": "command", "name": "end_calls"}) == Command("end_calls", {})
    assert to_data(Command("end_calls")) == {"event": "command", "name": "end_calls", "args": {}}
    assert isinstance(read_command({"event": "command", "name": "end_calls", "args": 1}), Refused)
