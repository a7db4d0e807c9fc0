"""In-band DTMF from RTP audio: G.711 A-law checked against sox's, and a stream's lost
packets, silence suppression, late and repeated packets reaching the detector as what
they are."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import numpy as np

from relay.gateways.dtmf import ALAW_TO_PCM, DtmfDetector, alaw_decode, ulaw_encode
from relay.gateways.rtp_events import parse_rtp
from relay.gateways.rtp_inband import PCMA, PCMU, RtpInband
from relay.rehearsal.dtmf_corpus import presses, through_ulaw, write_wav
from tests.services import need_tool

SOX = "apt-get install --no-install-recommends sox"


def sox_alaw(tmp_path: Path, pcm: np.ndarray) -> bytes:
    """`pcm` encoded as G.711 A-law by sox (an encoder that is not ours)."""
    need_tool("sox", SOX)
    wav = write_wav(tmp_path / "in.wav", np.asarray(pcm, dtype=np.int16))
    out = tmp_path / "out.al"
    subprocess.run(
        ["sox", str(wav), "-t", "raw", "-e", "a-law", "-b", "8", str(out)], check=True, timeout=60
    )
    return out.read_bytes()


def test_a_law_decodes_every_code_as_sox_does(tmp_path: Path) -> None:
    need_tool("sox", SOX)
    (tmp_path / "all.al").write_bytes(bytes(range(256)))
    command = ["sox", "-t", "raw", "-e", "a-law", "-b", "8", "-r", "8000", "-c", "1"]
    command += [str(tmp_path / "all.al"), "-t", "raw", "-e", "signed", "-b", "16", "-L"]
    subprocess.run([*command, str(tmp_path / "all.s16")], check=True, timeout=60)
    theirs = np.frombuffer((tmp_path / "all.s16").read_bytes(), dtype="<i2")
    assert np.array_equal(theirs, ALAW_TO_PCM)
    assert list(alaw_decode(b"\xd5\x55\xaa")) == [8, -8, 32256]


def test_keys_sent_as_a_law_are_heard(tmp_path: Path) -> None:
    audio = sox_alaw(tmp_path, presses("1A#0", 60).astype(np.int16))
    detector = DtmfDetector()
    keys = [k for i in range(0, len(audio), 160) for k in detector.feed_alaw(audio[i : i + 160])]
    assert keys == list("1A#0")
    assert DtmfDetector().feed_alaw(None) == []  # type: ignore[arg-type]


def packets(payload: bytes, payload_type: int = PCMU, start: int = 1000) -> list[bytes]:
    """`payload` as 20 ms RTP packets (sequence from 7, timestamps from `start`)."""
    return [
        struct.pack("!BBHII", 0x80, payload_type, 7 + n, start + 160 * n, 0xCAFE)
        + payload[i : i + 160]
        for n, i in enumerate(range(0, len(payload), 160))
    ]


def keys_of(stream: list[bytes], inband: RtpInband | None = None) -> str:
    inband = inband or RtpInband()
    found = ""
    for raw in stream:
        packet = parse_rtp(raw)
        assert packet is not None
        found += "".join(inband.feed(packet))
    return found


def test_a_held_key_stays_one_press_whichever_packet_is_lost(tmp_path: Path) -> None:
    ulaw = ulaw_encode(through_ulaw(presses("4", 800)))
    alaw = sox_alaw(tmp_path, through_ulaw(presses("4", 800)))
    for payload, kind in ((ulaw, PCMU), (alaw, PCMA)):
        stream = packets(payload, kind)
        for lost in range(6, 44, 3):
            inband = RtpInband()
            assert keys_of(stream[:lost] + stream[lost + 1 :], inband) == "4", (kind, lost)
            assert inband.lost_packets == 1


def test_most_40_ms_tones_that_lost_a_packet_are_still_heard() -> None:
    heard = cases = 0
    for lead in range(0, 160, 10):
        start = 800 + lead
        stream = packets(ulaw_encode(through_ulaw(presses("7", 40, lead_ms=start / 8))))
        for lost in range(start // 160, (start + 320) // 160 + 1):
            cases += 1
            heard += keys_of(stream[:lost] + stream[lost + 1 :]) == "7"
    assert (cases, heard >= 40) == (48, True)


def test_silence_suppressed_between_two_presses_of_one_key_keeps_them_two() -> None:
    # The sender stops sending for 100 ms between the tones (RFC 3551 §4.1: the
    # sequence goes on, the timestamp jumps): that is a pause, not lost audio.
    first = packets(ulaw_encode(through_ulaw(presses("5", 100, lead_ms=20, gap_ms=0))))
    second = packets(ulaw_encode(through_ulaw(presses("5", 100, lead_ms=0))), start=1000 + 160 * 20)
    second = [
        raw[:2] + struct.pack("!H", 7 + len(first) + n) + raw[4:] for n, raw in enumerate(second)
    ]
    assert keys_of(first + second) == "55"


def test_late_repeated_and_other_packets_change_nothing() -> None:
    stream = packets(ulaw_encode(through_ulaw(presses("9#", 100))))
    inband = RtpInband()
    shuffled = [*stream[:10], stream[3], stream[9], *stream[10:]]
    events = [struct.pack("!BBHII", 0x80, 101, 500, 1000, 0xCAFE) + b"\x09\x0a\x00\xa0"]
    assert keys_of(events + shuffled + events, inband) == "9#"
    assert inband.dropped == 2
    empty = parse_rtp(struct.pack("!BBHII", 0x80, PCMU, 9999, 1, 0xCAFE))
    assert empty is not None and inband.feed(empty) == []
