"""The Asterisk ARI gateway's pure core, without I/O: what each ARI event (Asterisk's
rest-api/api-docs/events.json: StasisStart, ChannelDtmfReceived, StasisEnd, …) becomes,
resyncs and URLs (the backoff, relay/backoff.py, is
tested with the rate limits). The real client against a fake Asterisk is in test_ari.py."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from relay.gateways.ari_check import stasis_target
from relay.gateways.ari_core import (
    Answer,
    AriCalls,
    AriError,
    MediaEntered,
    PlaybackFailed,
    Replaced,
    ari_urls,
)
from relay.gateways.ari_media import host_port, rtp_destination
from relay.gateways.common import Event
from relay.rehearsal.fake_ari import channel_json

from .ari_calls import CALLER, KEY, NUMBER, digit, joined, left


def core() -> AriCalls:
    return AriCalls(KEY.encode(), "dialjam")


def frame(kind: str, channel: dict[str, Any] | None = None, **fields: Any) -> bytes:
    msg: dict[str, Any] = {"type": kind, "application": "dialjam", **fields}
    if channel is not None:
        msg["channel"] = channel
    return orjson.dumps(msg)


def datas(outputs: list[Any]) -> list[dict[str, Any]]:
    assert all(isinstance(out, Event) for out in outputs), outputs
    return [out.data for out in outputs]


def test_a_channel_entering_the_app_is_answered_before_its_caller_joins() -> None:
    calls = core()
    out = calls.receive(frame("StasisStart", channel_json("1.1", NUMBER), args=[]))
    assert len(out) == 1 and isinstance(out[0], Answer)
    assert out[0].call.caller == CALLER and out[0].call.display == "…12"
    assert calls.callers == 0
    assert datas(calls.answered("1.1")) == [joined()]
    assert calls.callers == 1


def test_a_caller_who_hangs_up_leaves_once_whatever_asterisk_sends() -> None:
    calls = core()
    channel = channel_json("1.1", NUMBER)
    calls.receive(frame("StasisStart", channel, args=[]))
    calls.answered("1.1")
    out = [
        *calls.receive(frame("ChannelHangupRequest", channel, cause=16, soft=False)),
        *calls.receive(frame("StasisEnd", channel)),
        *calls.receive(frame("ChannelDestroyed", channel, cause=16, cause_txt="Normal Clearing")),
    ]
    assert datas(out) == [left()]
    assert calls.callers == 0


def test_a_caller_who_hangs_up_during_the_answer_never_joins() -> None:
    calls = core()
    channel = channel_json("1.1", NUMBER)
    calls.receive(frame("StasisStart", channel, args=[]))
    assert calls.receive(frame("StasisEnd", channel)) == []
    assert calls.answered("1.1") == []
    assert calls.receive(frame("StasisStart", channel, args=[])) == []  # a late repeat


def test_an_answer_that_failed_joins_nobody() -> None:
    calls = core()
    calls.receive(frame("StasisStart", channel_json("1.1", NUMBER), args=[]))
    calls.answer_failed("1.1")
    assert calls.answered("1.1") == []
    assert calls.callers == 0


def test_a_key_pressed_during_the_answer_joins_the_caller_at_once() -> None:
    calls = core()
    channel = channel_json("1.1", NUMBER, state="Up")
    calls.receive(frame("StasisStart", channel, args=[]))
    out = calls.receive(frame("ChannelDtmfReceived", channel, digit="7", duration_ms=0))
    assert datas(out) == [joined(), digit("7")]
    assert calls.answered("1.1") == []  # joined already: no second join


def test_a_key_from_a_channel_never_seen_implies_a_join() -> None:
    calls = core()
    out = calls.receive(frame("ChannelDtmfReceived", channel_json("9.9", NUMBER), digit="#"))
    assert datas(out) == [joined(), digit("#")]


def test_every_dtmf_key_is_a_digit_and_anything_else_is_refused() -> None:
    calls = core()
    channel = channel_json("1.1", NUMBER)
    calls.receive(frame("StasisStart", channel, args=[]))
    calls.answered("1.1")
    for key in "0123456789*#ABCD":
        out = calls.receive(frame("ChannelDtmfReceived", channel, digit=key, duration_ms=240))
        assert datas(out) == [digit(key)]
    for bad in ("E", "55", "", 5):
        with pytest.raises(AriError) as exc:
            calls.receive(frame("ChannelDtmfReceived", channel, digit=bad, duration_ms=240))
        assert exc.value.code == "bad_digit"


@pytest.mark.parametrize(
    ("text", "code"),
    [
        (b"{not json", "bad_json"),
        (b"[1, 2]", "bad_json"),
        (b'{"application": "dialjam"}', "bad_field"),
        (b'{"type": 5}', "bad_field"),
        (b'{"type": "StasisStart", "args": []}', "bad_field"),
        (b'{"type": "ChannelDtmfReceived", "digit": "5", "channel": {"name": "x"}}', "bad_field"),
        (b'{"type": "StasisEnd", "channel": "1.1"}', "bad_field"),
        (b'{"type": "SomethingNew"}', "unknown_event"),
    ],
)
def test_a_bad_message_is_refused_with_its_kind(text: bytes, code: str) -> None:
    with pytest.raises(AriError) as exc:
        core().receive(text)
    assert exc.value.code == code


def test_ordinary_events_of_no_interest_are_ignored_quietly() -> None:
    calls = core()
    channel = channel_json("1.1", NUMBER, state="Up")
    assert calls.receive(frame("ChannelStateChange", channel)) == []
    assert calls.receive(frame("PlaybackFinished", playback={"id": "p"})) == []
    assert calls.receive(frame("ChannelVarset", channel, variable="X", value="1")) == []


def test_application_replaced_tells_the_client_it_no_longer_hears_the_app() -> None:
    assert core().receive(frame("ApplicationReplaced")) == [Replaced()]


def test_callers_without_a_number_get_a_pseudonym_of_their_own_channel() -> None:
    calls = core()
    a = calls.call_for(channel_json("1700000000.11", None))
    b = calls.call_for(channel_json("1700000001.1", None))  # the same digits
    assert a.caller != b.caller and a.display is None
    assert a == calls.call_for(channel_json("1700000000.11", None))
    anonymous = channel_json("1.2", "anonymous")
    assert calls.call_for(anonymous).display is None


def test_a_resync_leaves_the_vanished_and_lists_the_unknown() -> None:
    calls = core()
    for channel_id in ("1.1", "1.2"):
        calls.receive(frame("StasisStart", channel_json(channel_id, NUMBER), args=[]))
        calls.answered(channel_id)
    calls.receive(frame("StasisStart", channel_json("1.3", "+15550000003"), args=[]))
    calls.receive(frame("StasisEnd", channel_json("1.4", NUMBER)))  # ended: never again
    leaves, unknown = calls.resync(["1.2", "1.4", "1.5"])
    assert datas(list(leaves)) == [left()]  # 1.1 is gone; 1.3 never joined
    assert unknown == ["1.5"]
    assert set(calls.joined) == {"1.2"} and not calls.answering


def test_a_channel_found_by_resync_joins_if_up_and_is_answered_if_ringing() -> None:
    calls = core()
    assert datas(calls.adopt(channel_json("2.1", NUMBER, state="Up"))) == [joined()]
    out = calls.adopt(channel_json("2.2", NUMBER, state="Ring"))
    assert len(out) == 1 and isinstance(out[0], Answer)
    calls.leave("2.3")
    assert calls.adopt(channel_json("2.3", NUMBER, state="Up")) == []


def test_when_the_relay_stops_everyone_leaves() -> None:
    calls = core()
    calls.receive(frame("StasisStart", channel_json("1.1", NUMBER), args=[]))
    calls.answered("1.1")
    calls.receive(frame("StasisStart", channel_json("1.2", NUMBER), args=[]))
    assert calls.channel_ids() == ["1.2", "1.1"]
    assert datas(list(calls.leave_all())) == [left()]
    assert calls.callers == 0 and not calls.answering


def test_callers_we_no_longer_hear_leave_as_lost_and_a_resync_brings_them_back() -> None:
    calls = core()
    calls.receive(frame("StasisStart", channel_json("1.1", NUMBER), args=[]))
    calls.answered("1.1")
    calls.receive(frame("StasisStart", channel_json("1.2", NUMBER), args=[]))
    assert datas(calls.lose_all()) == [{**left(), "reason": "lost"}]
    assert calls.callers == 0 and not calls.answering
    leaves, unknown = calls.resync(["1.1"])  # still in the app when we hear it again
    assert leaves == [] and unknown == ["1.1"]
    assert datas(calls.adopt(channel_json("1.1", NUMBER, state="Up"))) == [joined()]


def test_a_hang_up_request_without_soft_is_a_leave() -> None:
    calls = core()
    channel = channel_json("1.1", NUMBER)
    calls.receive(frame("StasisStart", channel, args=[]))
    calls.answered("1.1")
    assert datas(calls.receive(frame("ChannelHangupRequest", channel, cause=16))) == [left()]
    assert calls.receive(frame("StasisEnd", channel)) == []  # and no ChannelDestroyed needed


def test_a_failed_playback_is_reported_and_others_are_not() -> None:
    calls = core()
    playback = {"id": "p", "media_uri": "sound:beep", "target_uri": "channel:1.1"}
    failed = frame("PlaybackFinished", playback={**playback, "state": "failed"})
    assert calls.receive(failed) == [PlaybackFailed("sound:beep")]
    done = frame("PlaybackFinished", playback={**playback, "state": "done"})
    assert calls.receive(done) == []
    assert calls.receive(frame("PlaybackStarted", playback={**playback, "state": "playing"})) == []
    with pytest.raises(AriError) as exc:
        calls.receive(frame("PlaybackFinished", playback="sound:beep"))
    assert exc.value.code == "bad_field"


def test_a_real_channels_protocol_id_and_dialplan_go_no_further_than_the_core() -> None:
    calls = core()
    channel = channel_json("1.1", NUMBER)  # protocol_id, dialplan priority 2 (Stasis line)
    assert channel["protocol_id"] and channel["dialplan"]["priority"] == 2
    calls.receive(frame("StasisStart", channel, args=[]))
    out = calls.answered("1.1") + calls.receive(
        frame("ChannelDtmfReceived", channel, digit="5", duration_ms=0)
    )
    assert datas(out) == [joined(), digit("5")]


def test_the_calls_that_entered_the_app_are_counted() -> None:
    calls = core()
    assert calls.entered == 0
    calls.receive(frame("StasisStart", channel_json("1.1", NUMBER), args=[]))
    calls.receive(frame("StasisStart", channel_json("1.1", NUMBER), args=[]))  # a repeat
    calls.adopt(channel_json("1.2", NUMBER, state="Up"))  # found, not entered now
    assert calls.entered == 2


def test_a_kicked_caller_s_channels_are_given_to_hang_up_and_never_heard_again() -> None:
    calls = core()
    mine = channel_json("1.1", NUMBER)
    also_mine = channel_json("1.2", NUMBER)  # the same phone, calling twice
    other = channel_json("1.3", "+15550000003")
    for channel in (mine, also_mine, other):
        calls.receive(frame("StasisStart", channel, args=[]))
    calls.answered("1.1")
    calls.answered("1.3")
    assert calls.kick(CALLER) == ["1.2", "1.1"]
    assert calls.receive(frame("ChannelDtmfReceived", mine, digit="5", duration_ms=90)) == []
    assert calls.receive(frame("StasisEnd", mine)) == []  # no leave: the billboard said it
    assert calls.kick(CALLER) == []
    assert calls.callers == 1


@pytest.mark.parametrize(
    ("event", "target"),
    [
        ({"dialplan_app": "Stasis", "dialplan_app_data": "dialjam"}, "dialjam"),
        ({"dialplan_app": "Stasis", "dialplan_app_data": " lobby ,arg1,arg2"}, "lobby"),
        ({"dialplan_app": "STASIS", "dialplan_app_data": "dialjam"}, "dialjam"),
        ({"dialplan_app": "Stasis", "dialplan_app_data": ""}, None),
        ({"dialplan_app": "NoOp", "dialplan_app_data": "dialjam caller"}, None),
        ({"dialplan_app": "Stasis"}, None),
        ({"dialplan_app": 7, "dialplan_app_data": "dialjam"}, None),
    ],
)
def test_the_app_a_dialplan_step_sends_a_call_to(event: dict[str, Any], target: str | None) -> None:
    assert stasis_target(frame("ChannelDialplan", channel_json("1.1", NUMBER), **event)) == target
    assert stasis_target(frame("StasisStart", channel_json("1.1", NUMBER), **event)) is None
    assert stasis_target(b"{not json") is None and stasis_target(b"[]") is None


@pytest.mark.parametrize(
    ("url", "rest", "events"),
    [
        ("http://127.0.0.1:8088", "http://127.0.0.1:8088/ari", "ws://127.0.0.1:8088/ari/events"),
        (
            "https://pbx.example.org/",
            "https://pbx.example.org/ari",
            "wss://pbx.example.org/ari/events",
        ),
        ("ws://h:8088/ari/events", "http://h:8088/ari", "ws://h:8088/ari/events"),
        ("wss://h/asterisk/ari", "https://h/asterisk/ari", "wss://h/asterisk/ari/events"),
    ],
)
def test_the_events_socket_and_rest_base_come_from_one_url(
    url: str, rest: str, events: str
) -> None:
    assert ari_urls(url) == (rest, events)


# -- the phone music's external media channels (relay/gateways/ari_media.py) --


def external_channel(channel_id: str = "dialjam-music-0a1b") -> dict[str, Any]:
    """An external media channel as Asterisk reports it (chan_rtp's name, no caller)."""
    channel = channel_json(channel_id, None, state="Up")
    return {**channel, "name": "UnicastRTP/127.0.0.1:40000-0x7f3c28001a40", "protocol_id": ""}


def test_our_external_media_channel_entering_the_app_is_never_a_caller() -> None:
    calls = core()
    calls.media_ids.add("dialjam-music-0a1b")
    ours = {**external_channel(), "name": "anything"}  # known by its id alone
    assert calls.receive(frame("StasisStart", ours, args=[])) == [
        MediaEntered("dialjam-music-0a1b")
    ]
    assert calls.entered == 0  # no call entered: the dialplan is not proven by it
    assert calls.receive(frame("ChannelDtmfReceived", ours, digit="5", duration_ms=80)) == []
    assert calls.receive(frame("StasisEnd", ours)) == []
    assert calls.callers == 0


def test_any_unicast_rtp_channel_is_media_even_one_we_do_not_know() -> None:
    """A leftover of ours from before a restart: by its name, in an event or a resync."""
    calls = core()
    leftover = external_channel("1.77")
    assert calls.receive(frame("StasisStart", leftover, args=[])) == [MediaEntered("1.77")]
    assert calls.adopt(leftover) == [MediaEntered("1.77")]
    assert calls.callers == 0 and calls.entered == 0


def test_a_resync_does_not_fetch_our_own_media_channels() -> None:
    calls = core()
    calls.media_ids.add("dialjam-music-0a1b")
    leaves, unknown = calls.resync(["dialjam-music-0a1b", "1.9"])
    assert leaves == [] and unknown == ["1.9"]


def vars_of(address: Any, port: Any = None) -> dict[str, Any]:
    """An externalMedia answer's channelvars (a key left out when None)."""
    found = {"UNICASTRTP_LOCAL_ADDRESS": address, "UNICASTRTP_LOCAL_PORT": port}
    return {"channelvars": {k: v for k, v in found.items() if v is not None}}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (vars_of("10.0.0.5", "17000"), ("10.0.0.5", 17000)),
        # Asterisk bound every address: its own, as we reach it.
        (vars_of("0.0.0.0", "17000"), ("192.0.2.1", 17000)),
        (vars_of("::1", "9"), ("::1", 9)),
        (vars_of("10.0.0.5"), None),
        (vars_of("host", "1"), None),
        (vars_of("10.0.0.5", "0"), None),
        (vars_of("1.2.3.4", "70000"), None),
        (vars_of(5, "-1"), None),
        ({"id": "x"}, None),
        ([1, 2], None),
        (None, None),
    ],
)
def test_where_asterisk_takes_the_rtp_is_read_from_its_channelvars_or_refused(
    body: Any, expected: tuple[str, int] | None
) -> None:
    assert rtp_destination(body, "192.0.2.1") == expected


def test_an_external_host_is_host_colon_port_with_ipv6_in_brackets() -> None:
    assert host_port("127.0.0.1", 4000) == "127.0.0.1:4000"
    assert host_port("::1", 4000) == "[::1]:4000"
