"""RTP telephone-events (RFC 4733) into key presses: the base for a direct SIP trunk.

A pure core, stdlib only, with no I/O: an adapter that owns the UDP socket and the
SIP dialogue feeds it datagrams and the SDP it negotiated. Nothing here raises on bad
input: a malformed packet gives ``None`` (parsers) or is counted (the decoder).

- `parse_rtp` reads the fixed RTP header (RFC 3550 §5.1) and its CSRC list, header
  extension (§5.3.1) and padding.
- `telephone_event_payload_type` finds the dynamic payload type of
  ``telephone-event/8000`` in an SDP (RFC 4733 §7.1.1; RFC 4566 ``a=rtpmap``): callers
  choose it, so it is never assumed to be 101 (SIPp's captures use 101, its
  ``play_dtmf`` 96).
- `parse_telephone_event` / `parse_telephone_events` read the 4-byte event payload
  (RFC 4733 §2.3), several of them when events are packed into one packet (§2.5.1.5).
- `TelephoneEventDecoder` turns a stream of packets into each key press once.
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from dataclasses import dataclass
from typing import Final, Literal

# RFC 4733 §3.2, Table 1: events 0–9 are the digits, 10 is *, 11 is #, 12–15 are A–D:
# the contract's key set, in that order.
from ..contract.events import DTMF_KEYS

__all__ = [
    "DTMF_KEYS",
    "RtpPacket",
    "TelephoneEvent",
    "TelephoneEventDecoder",
    "parse_red",
    "parse_rtp",
    "parse_telephone_event",
    "parse_telephone_events",
    "sdp_payload_type",
    "telephone_event_payload_type",
]


_RTP_HEADER = struct.Struct("!BBHII")
_EVENT = struct.Struct("!BBH")
_TIMESTAMP_MODULUS = 1 << 32
_MAX_DURATION = 0xFFFF  # RFC 4733 §2.3.5: the duration field is 16 bits

ReportOn = Literal["release", "press"]


@dataclass(frozen=True, slots=True)
class RtpPacket:
    """One RTP data packet (RFC 3550 §5.1); `payload` excludes header, extension and
    padding."""

    version: int
    padding: bool
    extension: bool
    marker: bool
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    csrcs: tuple[int, ...]
    payload: bytes


@dataclass(frozen=True, slots=True)
class TelephoneEvent:
    """One RFC 4733 §2.3 event report.

    `volume` is the power level in −dBm0 (0 loudest, 63 quietest); `duration` counts
    RTP timestamp units since the event began (§2.3.5), so 800 is 100 ms at 8 kHz.
    """

    event: int
    end: bool
    volume: int
    duration: int

    @property
    def key(self) -> str | None:
        """The keypad key for DTMF events 0–15, None for other events (flash, tones)."""
        return DTMF_KEYS[self.event] if self.event < len(DTMF_KEYS) else None


def parse_rtp(packet: bytes) -> RtpPacket | None:
    """Parse an RTP packet (RFC 3550 §5.1), or None if it is not a well-formed one.

    Checks version 2, that the CSRC list (§5.1, CC) and header extension (§5.3.1) fit,
    and that the padding count (§5.1, P: the last octet) fits what is left. Packets
    whose second octet is 200–204 are RTCP sharing the port (RFC 5761 §4: payload types
    72–76 with the marker set) and give None too.
    """
    data = bytes(packet)
    if len(data) < _RTP_HEADER.size:
        return None
    first, second, sequence, timestamp, ssrc = _RTP_HEADER.unpack_from(data)
    version = first >> 6
    if version != 2 or 200 <= second <= 204:
        return None
    padding = bool(first & 0x20)
    extension = bool(first & 0x10)
    csrc_count = first & 0x0F
    offset = _RTP_HEADER.size + 4 * csrc_count
    if len(data) < offset:
        return None
    csrcs = struct.unpack_from(f"!{csrc_count}I", data, _RTP_HEADER.size)
    if extension:
        # §5.3.1: 16 bits defined by profile, 16 bits length in 32-bit words.
        if len(data) < offset + 4:
            return None
        (words,) = struct.unpack_from("!H", data, offset + 2)
        offset += 4 + 4 * words
        if len(data) < offset:
            return None
    end = len(data)
    if padding:
        # §5.1: the last octet counts the padding octets, itself included.
        pad = data[-1]
        if pad == 0 or end - pad < offset:
            return None
        end -= pad
    return RtpPacket(
        version=version,
        padding=padding,
        extension=extension,
        marker=bool(second & 0x80),
        payload_type=second & 0x7F,
        sequence=sequence,
        timestamp=timestamp,
        ssrc=ssrc,
        csrcs=tuple(csrcs),
        payload=data[offset:end],
    )


def sdp_payload_type(sdp: str, encoding: str, clock_rate: int) -> int | None:
    """The payload type an SDP maps to `encoding`/`clock_rate` (RFC 4566 §6,
    ``a=rtpmap:<pt> <encoding>/<clock rate>[/<channels>]``), or None.

    Only the first active ``m=audio`` section that lists the payload type in its format
    list counts (a port of 0 marks a rejected or disabled stream, RFC 3264 §6); an SDP
    fragment without any ``m=`` line is read as one section. Encoding names compare
    case-insensitively (RFC 4855 §3).
    """
    sections: list[tuple[list[str] | None, list[str]]] = [(None, [])]
    for raw in sdp.splitlines():
        line = raw.strip()
        if line.startswith("m="):
            sections.append((line[2:].split(), []))
        elif line.startswith("a=rtpmap:"):
            sections[-1][1].append(line[len("a=rtpmap:") :])
    candidates: list[tuple[list[str] | None, list[str]]]
    if len(sections) > 1:
        candidates = [
            (media, maps)
            for media, maps in sections[1:]
            if media is not None
            and len(media) >= 4
            and media[0].lower() == "audio"
            and media[1].split("/")[0] != "0"
        ]
    else:
        candidates = sections
    wanted = encoding.lower()
    for media, maps in candidates:
        formats = None if media is None else set(media[3:])
        for rtpmap in maps:
            fields = rtpmap.split(None, 1)
            if len(fields) != 2 or not fields[0].isdigit():
                continue
            name, _, rest = fields[1].strip().partition("/")
            rate = rest.split("/")[0].strip()
            payload_type = int(fields[0])
            if (
                name.lower() == wanted
                and rate == str(clock_rate)
                and payload_type <= 127
                and (formats is None or fields[0] in formats)
            ):
                return payload_type
        if media is not None:
            return None  # the audio section decides; later audio sections are alternatives
    return None


def telephone_event_payload_type(sdp: str, clock_rate: int = 8000) -> int | None:
    """The payload type of ``telephone-event/8000`` in an SDP's audio section
    (RFC 4733 §7.1.1), or None when the SDP offers no telephone-events.

    A WebRTC offer maps one per audio clock rate (``/48000`` beside ``/8000``); pass
    `clock_rate` for another. See `sdp_payload_type` for which section counts.
    """
    return sdp_payload_type(sdp, "telephone-event", clock_rate)


def parse_telephone_event(payload: bytes) -> TelephoneEvent | None:
    """The first event of a telephone-event payload (RFC 4733 §2.3), or None when it is
    shorter than 4 octets.

    The R bit is reserved: "the receiver MUST ignore it" (§2.3.3), so it is dropped.
    """
    if len(payload) < _EVENT.size:
        return None
    event, flags, duration = _EVENT.unpack_from(payload)
    return TelephoneEvent(
        event=event, end=bool(flags & 0x80), volume=flags & 0x3F, duration=duration
    )


def parse_telephone_events(payload: bytes) -> list[TelephoneEvent]:
    """Every event of a telephone-event payload, in order (RFC 4733 §2.5.1.5).

    A packet may pack several consecutive events: its RTP timestamp is the start of the
    first, and each next one starts where the previous one's duration ends. A trailing
    fragment shorter than 4 octets is ignored; an empty list means nothing usable.
    """
    usable = len(payload) - len(payload) % _EVENT.size
    events: list[TelephoneEvent] = []
    for offset in range(0, usable, _EVENT.size):
        event = parse_telephone_event(payload[offset : offset + _EVENT.size])
        if event is not None:
            events.append(event)
    return events


def parse_red(payload: bytes) -> list[tuple[int, int, bytes]] | None:
    """Split an RFC 2198 redundant-audio payload into (payload type, timestamp offset,
    block) tuples, oldest block first and the primary block last; None if malformed.

    RFC 2198 §3: each redundant block has a 4-octet header (F=1, 7-bit payload type,
    14-bit timestamp offset, 10-bit block length); the primary's header is 1 octet
    (F=0, payload type) and its block runs to the end of the payload.
    """
    headers: list[tuple[int, int, int]] = []
    offset = 0
    while True:
        if offset >= len(payload):
            return None
        first = payload[offset]
        if not first & 0x80:
            headers.append((first & 0x7F, 0, -1))
            offset += 1
            break
        if offset + 4 > len(payload):
            return None
        (word,) = struct.unpack_from("!I", payload, offset)
        headers.append(((word >> 24) & 0x7F, (word >> 10) & 0x3FFF, word & 0x3FF))
        offset += 4
    blocks: list[tuple[int, int, bytes]] = []
    for payload_type, timestamp_offset, length in headers:
        end = len(payload) if length < 0 else offset + length
        if end > len(payload):
            return None
        blocks.append((payload_type, timestamp_offset, payload[offset:end]))
        offset = end
    return blocks


def _is_later(timestamp: int, than: int) -> bool:
    """RTP timestamps wrap at 2**32 (RFC 3550 §5.1): compare them as serial numbers."""
    return 0 < (timestamp - than) % _TIMESTAMP_MODULUS < _TIMESTAMP_MODULUS // 2


_Key = tuple[int, int, int]  # (SSRC, start timestamp, event code)


@dataclass(slots=True)
class _Current:
    """The newest event heard from one source (an SSRC)."""

    timestamp: int
    event: int
    duration: int
    ended: bool
    heard: float | None  # when its latest packet arrived (the caller's clock), if said


END_TIMEOUT_S: Final = 0.3
"""How long a held key may go unheard before its press is taken to have ended with
its end packets lost: six of the 50 ms updates a sender sends at the least
(RFC 4733 §2.5.1.2, after RFC 2833 §3.6: "every 50 ms thereafter or the packet
interval for the audio codec"), so jitter never ends a held key early."""
# RFC 4733 §2.5.1.3: a long event is split when its duration reaches the 16-bit field's
# limit. A segment shorter than this was not split for length: a new timestamp after it
# is a new press. (Some senders split a little before the limit.)
_MIN_SEGMENT: Final = 0xFFFF - 8000


class TelephoneEventDecoder:
    """Key presses from RTP telephone-events (RFC 4733), each press once.

    Feed it every RTP packet of a call (audio included: other payload types are
    ignored and counted in `ignored`); `feed` returns the keys that completed. A press
    is identified by (SSRC, RTP timestamp, event): every packet of one event carries
    the timestamp of its start (§2.2.1), so the three copies of the end
    packet (§2.5.1.4), retransmits and reordered packets all count once, while the
    same key pressed again (a new timestamp) counts again.

    ``report_on="release"`` (the default, as Asterisk's ARI reports ChannelDtmfReceived)
    reports a key at its first end packet — an end packet alone is enough when the
    earlier ones were lost. When every end packet is lost, the press still ends, at the
    first of:

    - the next event from the same source (as a receiver playing out tones stops one
      when the next begins);
    - audio from the same source again, timestamped more than `end_timeout_s` after
      the last duration the event reported (the sender is back to speech, so the key is
      up; RTP time, no clock needed);
    - `expire(now)` finding no packet of it for `end_timeout_s` of the caller's clock
      (``feed(packet, now)`` says when each packet arrived): a sender updates a held
      key at least every 50 ms (§2.5.1.2), so silence that long means the end was lost;
    - `flush` when the call ends.

    ``"press"`` reports at the first packet seen of the event instead.

    A new RTP timestamp is a new event (§2.2.1), with one exception: a long press split
    into segments (§2.5.1.3: past the 16-bit duration field's 0xFFFF units, a new
    segment starts at a new timestamp where the previous one ended) counts once. A
    segment is told from a second press of the same key by the marker bit, which
    "indicates the beginning of a new event" and is set on the first segment only
    (§2.2.2), and by its length: only a segment that ran to the field's limit is
    continued, so the same key pressed again right where a press with lost end packets
    stopped is two presses.

    With `red_payload_type`, RFC 2198 redundancy payloads (RFC 4733 §2.6.2) are unpacked
    too: each block carrying `payload_type` is read with the timestamp its offset
    gives, so the copies fold into the same presses.

    Memory is bounded: it remembers the last `memory` presses (ample for retransmits,
    which come within tens of milliseconds) and the newest event of the last
    `max_sources` SSRCs. Malformed packets are counted in `malformed`, never raised.
    """

    def __init__(
        self,
        payload_type: int,
        *,
        report_on: ReportOn = "release",
        red_payload_type: int | None = None,
        memory: int = 256,
        max_sources: int = 64,
        end_timeout_s: float = END_TIMEOUT_S,
    ) -> None:
        self.payload_type = payload_type
        self.end_timeout_s = end_timeout_s
        self._end_timeout_units = max(0, round(end_timeout_s * 8000))
        self.report_on: ReportOn = report_on
        self.red_payload_type = red_payload_type
        self._memory = max(1, memory)
        self._max_sources = max(1, max_sources)
        self._reported: OrderedDict[_Key, None] = OrderedDict()
        self._current: OrderedDict[int, _Current] = OrderedDict()
        self.malformed = 0
        self.ignored = 0

    @property
    def remembered(self) -> int:
        """How many presses and sources the decoder holds now (bounded)."""
        return len(self._reported) + len(self._current)

    def feed(self, packet: RtpPacket | bytes, now: float | None = None) -> list[str]:
        """Take one RTP packet (parsed or raw) that arrived at `now` (seconds, any
        steady clock; None when the caller keeps no time, then only `expire` cannot
        end its press); return the keys it completes, in order."""
        rtp = packet if isinstance(packet, RtpPacket) else parse_rtp(packet)
        if rtp is None:
            self.malformed += 1
            return []
        if rtp.payload_type == self.payload_type:
            blocks = [(rtp.timestamp, rtp.payload)]
        elif self.red_payload_type is not None and rtp.payload_type == self.red_payload_type:
            red = parse_red(rtp.payload)
            if red is None:
                self.malformed += 1
                return []
            blocks = [
                ((rtp.timestamp - offset) % _TIMESTAMP_MODULUS, block)
                for payload_type, offset, block in red
                if payload_type == self.payload_type and block
            ]
        else:
            self.ignored += 1
            return self._audio(rtp)
        keys: list[str] = []
        marker = rtp.marker
        for timestamp, payload in blocks:
            events = parse_telephone_events(payload)
            if not events:
                self.malformed += 1
                continue
            start = timestamp
            for event in events:
                keys.extend(self._on_event(rtp.ssrc, start, event, marker, now))
                # §2.5.1.5: a packed event starts where the previous one ended.
                start = (start + event.duration) % _TIMESTAMP_MODULUS
                marker = False  # the marker marks the packet's first event only
        return keys

    def expire(self, now: float) -> list[str]:
        """The keys of presses unheard for `end_timeout_s` by `now` (release mode):
        their end packets were lost. Call it every few hundred milliseconds with the
        clock `feed` was given."""
        keys: list[str] = []
        for ssrc, current in self._current.items():
            if (
                not current.ended
                and current.heard is not None
                and now - current.heard >= self.end_timeout_s
            ):
                current.ended = True
                keys.extend(self._report((ssrc, current.timestamp, current.event)))
        return keys

    def _audio(self, rtp: RtpPacket) -> list[str]:
        """Audio from a source holding a key: past the key's last reported duration by
        more than the timeout, the key is up and its end packets were lost."""
        current = self._current.get(rtp.ssrc)
        if current is None or current.ended:
            return []
        limit = (current.timestamp + current.duration + self._end_timeout_units) % (
            _TIMESTAMP_MODULUS
        )
        if not _is_later(rtp.timestamp, limit):
            return []
        current.ended = True
        return self._report((rtp.ssrc, current.timestamp, current.event))

    def flush(self) -> list[str]:
        """End the call: the keys of events whose end packets never came (release mode;
        in press mode they were reported already). Forgets every source."""
        keys: list[str] = []
        for ssrc, current in self._current.items():
            if not current.ended:
                keys.extend(self._report((ssrc, current.timestamp, current.event)))
        self._current.clear()
        return keys

    def _on_event(
        self, ssrc: int, timestamp: int, event: TelephoneEvent, marker: bool, now: float | None
    ) -> list[str]:
        keys: list[str] = []
        key = (ssrc, timestamp, event.event)
        current = self._current.get(ssrc)
        if current is None or _is_later(timestamp, current.timestamp):
            if current is not None and not current.ended:
                previous = (ssrc, current.timestamp, current.event)
                if not marker and self._continues(current, timestamp, event):
                    # §2.5.1.3: the next segment of a long press is the same press.
                    if previous in self._reported:
                        self._remember(key)
                elif self.report_on == "release":
                    # Its end packets were all lost: the new event ends it.
                    keys.extend(self._report(previous))
            self._current[ssrc] = _Current(timestamp, event.event, event.duration, event.end, now)
            self._current.move_to_end(ssrc)
            while len(self._current) > self._max_sources:
                self._current.popitem(last=False)
        elif (current.timestamp, current.event) == (timestamp, event.event):
            current.duration = max(current.duration, event.duration)
            current.ended = current.ended or event.end
            if now is not None:
                current.heard = now
        # Otherwise a late packet of an older event (reordering): it may still report
        # that event below, but the newest event stays the newest.
        if event.end or self.report_on == "press":
            keys.extend(self._report(key))
        return keys

    @staticmethod
    def _continues(current: _Current, timestamp: int, event: TelephoneEvent) -> bool:
        """Whether an event at `timestamp` is the next segment of `current` (§2.5.1.3):
        the same event, starting where a segment that ran to the duration field's
        limit ended."""
        gap = (timestamp - current.timestamp) % _TIMESTAMP_MODULUS
        return (
            event.event == current.event
            and gap in (current.duration, _MAX_DURATION)
            and gap >= _MIN_SEGMENT
        )

    def _report(self, key: _Key) -> list[str]:
        if key in self._reported:
            return []
        self._remember(key)
        code = key[2]
        return [DTMF_KEYS[code]] if code < len(DTMF_KEYS) else []

    def _remember(self, key: _Key) -> None:
        self._reported[key] = None
        while len(self._reported) > self._memory:
            self._reported.popitem(last=False)
