"""The banner a `state` carries for the wall mirror (relay/contract/scene.py): the
installation's own number and the keypad's address; the running bans a console may
undo; all read totally."""

from __future__ import annotations

import pytest

from relay.contract.events import State, read_billboard
from relay.contract.scene import BANNED_MAX, Banned, Banner, read_banner

KEYPAD = "https://jam.example.org/keypad?channel=dialjam"


def sample_state(**changes: object) -> dict[str, object]:
    music = {"event": "state", "tempo": 112, "key": "C", "scale": "major", "step": 3}
    return {**music, "facade": {"floors": 7, "bays": 8}, **changes}


def test_the_banner_travels_in_the_state_and_reads_back() -> None:
    state = read_billboard(sample_state(banner={"phone": "+1 415 555 0100", "keypad": KEYPAD}))
    assert isinstance(state, State)
    assert state.banner == Banner("+1 415 555 0100", KEYPAD)
    assert state.to_data()["banner"] == {"phone": "+1 415 555 0100", "keypad": KEYPAD}


@pytest.mark.parametrize(
    ("given", "read"),
    [
        (None, None),
        ("+1 415", None),
        ({"phone": None, "keypad": None}, None),
        ({"phone": "call <b>now</b>", "keypad": KEYPAD}, Banner(None, KEYPAD)),
        ({"phone": "0800 123", "keypad": "javascript:alert(1)"}, Banner("0800 123", None)),
        ({"phone": 4155550100, "keypad": "https://x.example/keypad a"}, None),
        ({"phone": "1" * 40, "keypad": "https://x.example/" + "k" * 600}, None),
    ],
)
def test_a_strange_banner_is_dropped_never_trusted(given: object, read: Banner | None) -> None:
    assert read_banner(given) == read
    state = read_billboard(sample_state(banner=given))
    assert isinstance(state, State) and state.banner == read


def test_the_running_bans_travel_in_the_state_in_whole_seconds_and_read_back() -> None:
    state = State(112.0, "C", "major", 3, 7, 8, banned=(Banned("c-rude", "…12", 89.2),))
    data = state.to_data()
    assert data["banned"] == [{"caller": "c-rude", "display": "…12", "ban_s": 90}]
    read = read_billboard(data)
    assert isinstance(read, State) and read.banned == (Banned("c-rude", "…12", 90.0),)


@pytest.mark.parametrize(
    "banned",
    [
        [{"caller": "4155551212", "display": None, "ban_s": 30}],  # a number, not an id
        [{"caller": "c-rude", "display": None, "ban_s": -1}],
        [{"caller": "c-rude", "display": None, "ban_s": "soon"}],
        [{"caller": "c-rude", "display": None}],
        [{"caller": f"c-{n}", "ban_s": 1} for n in range(BANNED_MAX + 1)],
        {"caller": "c-rude"},
    ],
)
def test_a_malformed_ban_list_refuses_the_state(banned: object) -> None:
    assert not isinstance(read_billboard(sample_state(banned=banned)), State)


def test_a_ban_shows_at_most_what_the_facade_showed_of_a_caller() -> None:
    given = [{"caller": "c-rude", "display": "4155551212", "ban_s": 30}]
    read = read_billboard(sample_state(banned=given))
    assert isinstance(read, State) and read.banned == (Banned("c-rude", None, 30.0),)
