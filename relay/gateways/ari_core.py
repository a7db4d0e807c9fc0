"""The Asterisk ARI gateway's pure core: ARI events in, actions and events out, no I/O
(the client that runs it is `relay.gateways.ari`).

The shapes are Asterisk's own, in its source tree's ``rest-api/api-docs/events.json``
and ``channels.json`` and on
https://docs.asterisk.org/Configuration/Interfaces/Asterisk-REST-Interface-ARI/:

- ``StasisStart {args, channel}`` → `Answer` (answer, play the prompt), then `join`.
- ``ChannelDtmfReceived {digit, duration_ms, channel}`` (sent when the key is released)
  → `digit`.
- ``StasisEnd {channel}`` and ``ChannelHangupRequest {cause, channel}`` (``soft`` is
  optional: real Asterisk often leaves it out) → one `leave` (reason ``hangup``).
  ``ChannelDestroyed`` is taken too, though no real Asterisk sends it to the app after
  ``StasisEnd``.
- ``PlaybackFinished {playback}`` with ``state: "failed"`` (a prompt Asterisk cannot
  find: ``play`` had answered 201) → `PlaybackFailed`.
- ``ApplicationReplaced`` (another socket took the app; the newer one wins) → `Replaced`.
- The external media channels the gateway makes for the phone music
  (``relay/gateways/ari_media.py``) enter the app too: a ``StasisStart`` (or a resync
  finding one) of a channel in `media_ids`, or of any ``UnicastRTP/`` channel (no phone
  is one), → `MediaEntered`, never a caller; their keys and ends are not a caller's.

A ``Channel`` is ``{id, protocol_id, name, state, caller{name, number}, connected,
accountcode, dialplan{context, exten, priority, app_name, app_data}, creationtime,
language}``; the number is turned into a keyed pseudonym at once and never kept.

A caller the gateway stops hearing while their call may go on (another client took the
app, Asterisk unreachable too long) leaves with reason ``lost`` and is *not* marked
ended: a later resync that finds their channel still in the app brings them back.
"""

from __future__ import annotations

import base64
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..contract.errors import PeerError
from ..contract.privacy import call_pseudonym, masked, number_digits, pseudonym
from .common import KEYS, Event, digit_event, join_event, json_object, leave_event

# Channels that ended are remembered this long (by count) so that a late event or a
# resync racing a hang-up never brings them back.
ENDED_MEMORY = 1024
# Events that carry nothing for us but are normal on an app's socket.
QUIET_EVENTS = frozenset(
    {
        "ChannelCreated",
        "ChannelStateChange",
        "ChannelVarset",
        "ChannelDialplan",
        "ChannelCallerId",
        "ChannelConnectedLine",
        "ChannelEnteredBridge",
        "ChannelLeftBridge",
        "ChannelHold",
        "ChannelUnhold",
        "ChannelTalkingStarted",
        "ChannelTalkingFinished",
        "ChannelToneDetected",
        "ChannelUserevent",
        "PlaybackStarted",
        "PlaybackContinuing",
        "BridgeCreated",
        "BridgeDestroyed",
        "Dial",
        "DeviceStateChanged",
        "EndpointStateChange",
        "ApplicationRegistered",
        "ApplicationUnregistered",
    }
)
LEAVE_EVENTS = frozenset({"StasisEnd", "ChannelHangupRequest", "ChannelDestroyed"})
# A caller we no longer hear, whose call may still be up (relay/contract/events.py).
LOST = "lost"


# -- values --


@dataclass(frozen=True)
class AriCall:
    """A caller on one Asterisk channel (no number: only its pseudonym and "…12")."""

    channel_id: str
    caller: str
    display: str | None


@dataclass(frozen=True)
class Answer:
    """Answer this channel and play the prompt; then tell the core (`answered` or
    `answer_failed`)."""

    call: AriCall


@dataclass(frozen=True)
class Replaced:
    """Another client took our application: we no longer hear our callers."""


@dataclass(frozen=True)
class PlaybackFailed:
    """Asterisk could not play `media` (``PlaybackFinished`` with state "failed")."""

    media: str


@dataclass(frozen=True)
class MediaEntered:
    """An external media channel entered the app: ours (in `AriCalls.media_ids`), or
    one left over from before (a ``UnicastRTP/`` channel we do not know)."""

    channel_id: str


Output = Event | Answer | Replaced | PlaybackFailed | MediaEntered
# Asterisk's chan_rtp names its channels "UnicastRTP/HOST:PORT-0x…" (chan_rtp.c).
MEDIA_PREFIX = "UnicastRTP/"


class AriError(PeerError):
    """A message the client cannot use: the peer's fault, never the relay's."""


# -- pure helpers --


def ari_urls(url: str) -> tuple[str, str]:
    """`[ari] url` → (REST base "http(s)://HOST:PORT/ari", events "ws(s)://…/ari/events").
    http(s) and ws(s) are both accepted, with or without a trailing /ari or /ari/events."""
    base = url.strip().rstrip("/")
    for suffix in ("/ari/events", "/ari"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    scheme, sep, rest = base.partition("://")
    http = {"ws": "http", "wss": "https"}.get(scheme, scheme)
    ws = {"http": "ws", "https": "wss"}.get(http, http)
    return f"{http}{sep}{rest}/ari", f"{ws}{sep}{rest}/ari/events"


def basic_auth(username: str, password: str) -> str:
    """The Authorization header of HTTP basic auth (RFC 7617), as ARI's REST API takes."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def _channel(msg: dict[str, Any]) -> dict[str, Any]:
    channel = msg.get("channel")
    if not isinstance(channel, dict):
        raise AriError("bad_field", "channel missing or not an object")
    if not isinstance(channel.get("id"), str) or not channel["id"]:
        raise AriError("bad_field", "channel.id missing or not a string")
    return channel


def _playback_failed(msg: dict[str, Any]) -> list[Output]:
    playback = msg.get("playback")
    if not isinstance(playback, dict):
        raise AriError("bad_field", "playback missing or not an object")
    if playback.get("state") != "failed":
        return []
    media = playback.get("media_uri")
    return [PlaybackFailed(media[:120] if isinstance(media, str) else "?")]


# -- the callers of one application (pure core) --


@dataclass
class AriCalls:
    """ARI events in, actions and events out. Each channel goes answering → joined →
    ended; a `leave` is given once per joined channel. Raises `AriError` for a bad
    message and keeps going: the next good one works. `entered` counts the channels
    that entered the app (StasisStart): the proof that the dialplan sends calls here."""

    key: bytes
    channel: str
    answering: dict[str, AriCall] = field(default_factory=dict)
    joined: dict[str, AriCall] = field(default_factory=dict)
    ended: OrderedDict[str, None] = field(default_factory=OrderedDict)
    entered: int = 0
    # The external media channels the gateway made (it adds each before asking).
    media_ids: set[str] = field(default_factory=set)

    @property
    def callers(self) -> int:
        return len(self.joined)

    def receive(self, frame: str | bytes) -> list[Output]:
        msg, kind = json_object(frame, "type", AriError)
        if kind == "StasisStart":
            channel = _channel(msg)
            if self.is_media(channel):
                return [MediaEntered(channel["id"])]
            self.entered += 1
            return self.start(channel)
        if kind == "ChannelDtmfReceived":
            channel = _channel(msg)
            if self.is_media(channel):
                return []
            digit = msg.get("digit")
            if not isinstance(digit, str) or digit not in KEYS:
                raise AriError("bad_digit", "digit is not one of 0-9 * # A-D")
            return self.digit(channel, digit)
        if kind in LEAVE_EVENTS:
            return list(self.leave(_channel(msg)["id"]))
        if kind == "PlaybackFinished":
            return _playback_failed(msg)
        if kind == "ApplicationReplaced":
            return [Replaced()]
        if kind in QUIET_EVENTS:
            return []
        raise AriError("unknown_event", f"unknown event type {kind[:40]!r}")

    def start(self, channel: dict[str, Any]) -> list[Output]:
        """A channel entered the app (StasisStart): answer it first."""
        channel_id = channel["id"]
        if self._known(channel_id):
            return []  # a repeat (a resync racing the event), or a late one
        call = self.call_for(channel)
        self.answering[channel_id] = call
        return [Answer(call)]

    def adopt(self, channel: dict[str, Any]) -> list[Output]:
        """A channel in the app that we did not know (found by a resync): one that is
        already up joins at once, one still ringing is answered first."""
        if self.is_media(channel):
            return [MediaEntered(channel["id"])]
        if channel.get("state") != "Up":
            return self.start(channel)
        if self._known(channel["id"]):
            return []
        return [self._join(self.call_for(channel))]

    def answered(self, channel_id: str) -> list[Output]:
        """The answer (and prompt) went through: the caller joins, unless they have
        hung up meanwhile or a key press already joined them."""
        call = self.answering.pop(channel_id, None)
        return [] if call is None else [self._join(call)]

    def answer_failed(self, channel_id: str) -> None:
        """Asterisk would not answer (404: the channel is gone): nobody joins."""
        self.answering.pop(channel_id, None)

    def digit(self, channel: dict[str, Any], key: str) -> list[Output]:
        channel_id = channel["id"]
        if channel_id in self.ended:
            return []
        out: list[Output] = []
        call = self.joined.get(channel_id)
        if call is None:
            # A key from a channel being answered, or one we never saw start: the
            # caller is plainly there, and a digit from an unknown caller implies a join.
            call = self.answering.pop(channel_id, None) or self.call_for(channel)
            out.append(self._join(call))
        out.append(digit_event(self.channel, call.caller, key, "ari"))
        return out

    def leave(self, channel_id: str) -> list[Event]:
        """The channel left the app or hung up: its caller leaves (once)."""
        self.answering.pop(channel_id, None)
        call = self.joined.pop(channel_id, None)
        self._end(channel_id)
        return [] if call is None else [leave_event(self.channel, call.caller)]

    def kick(self, caller: str) -> list[str]:
        """The operator kicked `caller`: their channels, to hang up. From now on their
        keys are not heard and no event brings them back; no `leave` is given (the
        billboard has said ``leave`` ``kicked`` already)."""
        ids = [
            i
            for i, call in [*self.answering.items(), *self.joined.items()]
            if call.caller == caller
        ]
        for channel_id in ids:
            self.answering.pop(channel_id, None)
            self.joined.pop(channel_id, None)
            self._end(channel_id)
        return ids

    def channel_ids(self) -> list[str]:
        """Every channel we answer or hear (to hang up when the relay stops)."""
        return [*self.answering, *self.joined]

    def resync(self, channel_ids: Iterable[str]) -> tuple[list[Event], list[str]]:
        """After a reconnect: the app's `channel_ids` now. Returns the leaves of the
        callers that are gone and the ids we do not know (to fetch and `adopt`)."""
        present = set(channel_ids)
        leaves: list[Event] = []
        for channel_id in [*self.answering, *self.joined]:
            if channel_id not in present:
                leaves.extend(self.leave(channel_id))
        unknown = [channel_id for channel_id in sorted(present) if not self._known(channel_id)]
        return leaves, unknown

    def leave_all(self) -> list[Event]:
        """Everyone leaves: their calls ended."""
        return [ev for channel_id in self.channel_ids() for ev in self.leave(channel_id)]

    def lose_all(self) -> list[Event]:
        """We no longer hear anyone, though their calls may go on: each caller leaves
        with reason ``lost``, and a resync that finds them still in the app brings them
        back."""
        lost = [leave_event(self.channel, call.caller, LOST) for call in self.joined.values()]
        self.answering.clear()
        self.joined.clear()
        return lost

    def call_for(self, channel: dict[str, Any]) -> AriCall:
        """The channel's caller: a pseudonym of `caller.number` (the number stops here),
        or, with no number, one of the channel itself."""
        channel_id = channel["id"]
        caller = channel.get("caller")
        number = caller.get("number") if isinstance(caller, dict) else None
        digits = number_digits(number) if isinstance(number, str) else ""
        if digits:
            return AriCall(channel_id, pseudonym(digits, self.key), masked(digits))
        return AriCall(channel_id, call_pseudonym(f"ari channel {channel_id}", self.key), None)

    def is_media(self, channel: dict[str, Any]) -> bool:
        """An external media channel (ours, or a ``UnicastRTP/`` one), never a caller."""
        name = channel.get("name")
        return channel["id"] in self.media_ids or (
            isinstance(name, str) and name.startswith(MEDIA_PREFIX)
        )

    def _known(self, channel_id: str) -> bool:
        return (
            channel_id in self.answering
            or channel_id in self.joined
            or channel_id in self.ended
            or channel_id in self.media_ids
        )

    def _end(self, channel_id: str) -> None:
        if channel_id not in self.ended:
            self.ended[channel_id] = None
            while len(self.ended) > ENDED_MEMORY:
                self.ended.popitem(last=False)

    def _join(self, call: AriCall) -> Event:
        self.joined[call.channel_id] = call
        return join_event(self.channel, call.caller, "ari", call.display)


__all__ = [
    "LOST",
    "Answer",
    "AriCall",
    "AriCalls",
    "AriError",
    "MediaEntered",
    "Output",
    "PlaybackFailed",
    "Replaced",
    "ari_urls",
    "basic_auth",
]
