"""The contract's sans-I/O v2 subscriber: frames in, messages out, and where to resume
each channel after a reconnect (the README's "v2" section), without a socket."""

from __future__ import annotations

import json
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relay.contract.subscriber import (
    Ack,
    Gap,
    Pong,
    Received,
    RelayError,
    Subscribed,
    Unreadable,
    V2Subscriber,
    publish_frame,
    subscribe_frame,
)

DIGIT = {"event": "digit", "caller": "c-pfbnkdsvqt", "digit": "5", "source": "web"}


def event(channel: str, seq: int, data: Any = DIGIT) -> dict[str, Any]:
    return {"type": "event", "id": channel, "seq": seq, "ts": 1700000000000, "data": data}


def text(value: Any) -> str:
    return json.dumps(value)


def test_a_fresh_subscriber_asks_for_every_channel_without_since() -> None:
    sub = V2Subscriber(["dialjam", "dialjam:control"])
    assert sub.subscribe_frames() == [
        {"type": "subscriber", "id": "dialjam", "v": 2},
        {"type": "subscriber", "id": "dialjam:control", "v": 2},
    ]
    assert sub.position("dialjam") is None


def test_events_are_handed_over_and_a_reconnect_resumes_after_the_last_seen() -> None:
    sub = V2Subscriber(["dialjam", "dialjam:control"])
    assert sub.receive_data(text({"type": "subscribed", "id": "dialjam", "seq": 4, "epoch": "e1"}))
    got = sub.receive_data(text([event("dialjam", 5), event("dialjam", 6)]))  # coalesced
    assert got == [
        Received("dialjam", 5, 1700000000000, DIGIT),
        Received("dialjam", 6, 1700000000000, DIGIT),
    ]
    assert sub.position("dialjam") == (6, "e1")
    assert sub.subscribe_frames()[0] == {
        "type": "subscriber",
        "id": "dialjam",
        "v": 2,
        "since": 6,
        "epoch": "e1",
    }
    # The same epoch again: the position stands, the replay continues it.
    sub.receive_data(text({"type": "subscribed", "id": "dialjam", "seq": 9, "epoch": "e1"}))
    assert sub.position("dialjam") == (6, "e1")


def test_a_new_epoch_starts_the_position_afresh_and_an_empty_gap_is_no_loss() -> None:
    sub = V2Subscriber(["dialjam"], loads=orjson.loads)
    sub.receive_data(text({"type": "subscribed", "id": "dialjam", "seq": 0, "epoch": "a-1"}))
    sub.receive_data(text(event("dialjam", 40)))
    # The relay restarted: another epoch, and a gap saying none of it was lost.
    got = sub.receive_data(
        text(
            [
                {"type": "subscribed", "id": "dialjam", "seq": 2, "epoch": "b-1"},
                {"type": "gap", "id": "dialjam", "from": 1, "to": 0, "reason": "epoch"},
                event("dialjam", 1),
            ]
        )
    )
    assert got[0] == Subscribed("dialjam", 2, "b-1")
    gap = got[1]
    assert isinstance(gap, Gap) and not gap.lost
    assert sub.position("dialjam") == (1, "b-1")
    lost = sub.receive_data(
        text({"type": "gap", "id": "dialjam", "from": 3, "to": 7, "reason": "history"})
    )
    assert lost == [Gap("dialjam", 3, 7, "history")] and lost[0].lost


def test_what_is_not_a_relay_message_is_unreadable_or_skipped_never_raised() -> None:
    sub = V2Subscriber(["dialjam"])
    assert sub.receive_data("{not json") == [Unreadable("relay sent a frame that is not JSON")]
    assert sub.receive_data("[1]") == [Unreadable("relay sent a frame that is not an object")]
    assert sub.receive_data(text({"type": "subscribed", "id": "dialjam", "seq": "x"})) == [
        Unreadable("relay sent a subscribed frame without seq and epoch")
    ]
    assert sub.receive_data(text({"type": "who-knows"})) == []
    assert sub.receive_data(text(event("dialjam", 3, data=[1, 2]))) == []  # data not an object
    assert sub.position("dialjam") == (3, None)


def test_the_relays_answers_are_messages() -> None:
    sub = V2Subscriber(["dialjam:state"])
    got = sub.receive_data(
        text(
            [
                {"type": "error", "code": "rate_limited", "message": "slow down"},
                {"type": "ack", "id": "dialjam:state", "seq": 3, "epoch": "e"},
                {"type": "pong"},
            ]
        )
    )
    assert got == [RelayError("rate_limited", "slow down"), Ack("dialjam:state", 3, "e"), Pong()]


def test_client_frames_are_written_in_the_relays_shapes() -> None:
    assert subscribe_frame("x", 3, "e") == {
        "type": "subscriber",
        "id": "x",
        "v": 2,
        "since": 3,
        "epoch": "e",
    }
    assert publish_frame("x", {"event": "leave"}, session="S", ack=True) == {
        "type": "publisher",
        "id": "x",
        "data": {"event": "leave"},
        "session": "S",
        "ack": True,
    }


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(max_size=8)
    | st.sampled_from(["event", "gap", "subscribed", "error", "ack", "pong", "dialjam"]),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(["type", "id", "seq", "epoch", "data", "from", "to", "code"]),
            inner,
            max_size=6,
        )
    ),
    max_leaves=20,
)


@settings(
    max_examples=300, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
)
@given(JSON)
def test_any_json_value_from_the_relay_is_read_never_raised(value: Any) -> None:
    sub = V2Subscriber(["dialjam"])
    for message in sub.receive(value):
        assert isinstance(
            message, Received | Subscribed | Gap | Ack | Pong | RelayError | Unreadable
        )
    for frame in sub.subscribe_frames():
        assert frame.get("since") is None or isinstance(frame["since"], int)
