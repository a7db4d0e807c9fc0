"""The banner a `state` carries for the wall mirror (relay/contract/scene.py): the
installation's own number and the keypad's address, read totally."""

from __future__ import annotations

import pytest

from relay.contract.events import State, read_billboard
from relay.contract.scene import Banner, read_banner

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
