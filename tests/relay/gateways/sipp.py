"""SIPp (Debian `sip-tester`) against the SIP gateway, for tests: scenarios built from
a few pieces, a run on free ports of 127.0.0.1, and an RTP capture of key tones in
PCMU for SIPp's ``play_pcap_audio``."""

from __future__ import annotations

import asyncio
import random
import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np

from relay.app import STATE, health
from relay.config import RelayConfig, SipConfig
from relay.gateways.dtmf import dtmf_tone, ulaw_encode
from relay.gateways.sip.gateway import SipGateway
from tests.services import need_tool
from tests.support.relay import RunningRelay, StartRelay
from tests.support.relay import recv as relay_recv

from .listeners import subscribe

SIPP_PCAPS = Path("/usr/share/sip-tester")
RUN_S = 90.0  # one scenario of a few seconds, on a loaded two-core machine

HEAD = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="{name}">
"""
TAIL = "</scenario>\n"

# Every request of the call, with a fixed branch where the test needs one (a CANCEL
# shares its INVITE's; a retransmitted INVITE is the same request again).
INVITE = """  <send{retrans}>
    <![CDATA[

      INVITE sip:jam@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch={branch};rport
      From: "Caller" <sip:+4930555010[call_number]@[local_ip]:[local_port]>;tag=[pid]T[call_number]
      To: <sip:jam@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:sipp@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[local_ip_type] [local_ip]
      t=0 0
      m=audio {media_port} RTP/AVP {formats}
{rtpmaps}
    ]]>
  </send>
"""


def in_dialog(method: str, cseq: int, branch: str = "[branch]") -> str:
    retrans = ' retrans="500"' if method != "ACK" else ""
    return f"""  <send{retrans}>
    <![CDATA[

      {method} sip:jam@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch={branch};rport
      From: "Caller" <sip:+4930555010[call_number]@[local_ip]:[local_port]>;tag=[pid]T[call_number]
      To: <sip:jam@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: {cseq} {method}
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
"""


def recv(response: str, optional: bool = False) -> str:
    extra = ' optional="true"' if optional else ""
    return f'  <recv response="{response}"{extra}/>\n'


def play(pcap: str, then_ms: int = 1000) -> str:
    """SIPp plays a capture on a thread of its own, with the capture's own RTP sequence
    numbers and timestamps, and stops a playback still under way when the next one
    starts: `then_ms` leaves the capture (about 200 ms) time to finish even when a busy
    machine starts the thread late, so its end packets are always sent."""
    played = f'  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>\n'
    return played + (pause(then_ms) if then_ms else "")


def play_dtmf(keys: str, then_ms: int = 400) -> str:
    return (
        f'  <nop><action><exec play_dtmf="{keys}"/></action></nop>\n'
        f'  <pause milliseconds="{then_ms}"/>\n'
    )


def pause(ms: int) -> str:
    return f'  <pause milliseconds="{ms}"/>\n'


BYE_FROM_THEM = in_dialog("BYE", 2) + recv("200")

BYE_FROM_US = """  <recv request="BYE"/>
  <send>
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
"""


def invite(
    formats: str = "8 101",
    branch: str = "[branch]",
    retrans: bool = True,
    *,
    media_port: int | None = None,
    direction: str = "",
) -> str:
    """SIPp's INVITE offering `formats`; its audio at SIPp's own media port unless
    `media_port` says another on 127.0.0.1 (a test's recorder), with an ``a=`` line
    of `direction` when given."""
    maps = {
        "0": "PCMU/8000",
        "8": "PCMA/8000",
        "96": "telephone-event/8000",
        "101": "telephone-event/8000",
        "18": "G729/8000",
    }
    rtpmaps = "\n".join(f"      a=rtpmap:{f} {maps[f]}" for f in formats.split())
    if direction:
        rtpmaps += f"\n      a={direction}"
    return INVITE.format(
        retrans=' retrans="500"' if retrans else "",
        branch=branch,
        formats=formats,
        rtpmaps=rtpmaps,
        media_port="[media_port]" if media_port is None else media_port,
    )


def reinvite(cseq: int, formats: str, *, media_port: int, direction: str = "") -> str:
    """A re-INVITE in the dialog (its CSeq `cseq`) with a new offer: hold, resume."""
    text = invite(formats, media_port=media_port, direction=direction)
    text = text.replace(
        "To: <sip:jam@[remote_ip]:[remote_port]>",
        "To: <sip:jam@[remote_ip]:[remote_port]>[peer_tag_param]",
    )
    return text.replace("CSeq: 1 INVITE", f"CSeq: {cseq} INVITE")


def recv_with(response: str, pattern: str) -> str:
    """Receive `response`; the call fails unless its body matches `pattern`."""
    return f"""  <recv response="{response}">
    <action>
      <ereg regexp="{pattern}" search_in="body" check_it="true" assign_to="matched"/>
    </action>
  </recv>
  <Reference variables="matched"/>
"""


def answered(formats: str = "8 101") -> str:
    """INVITE, 100, 200, ACK."""
    return invite(formats) + recv("100", True) + recv("200") + in_dialog("ACK", 1)


def scenario(name: str, *steps: str) -> str:
    return HEAD.format(name=name) + "".join(steps) + TAIL


def free_udp_port(even: bool = False) -> int:
    """A port free on 127.0.0.1 for UDP and for TCP both: SIPp binds its `-p` port in the
    scenario's transport (a TCP client binds it too), so a port taken for TCP only
    would make it exit before its first message."""
    while True:
        with (
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp,
            socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp,
        ):
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
            try:
                tcp.bind(("127.0.0.1", port))
            except OSError:
                continue
        if not even or port % 2 == 0:
            return port


def free_media_ports() -> int:
    """An even port whose next three are free too: SIPp's `-mp` audio port and the ones
    it binds beside it (RTCP, and video at +2 with its RTCP), so none of them can make
    it exit before the call."""
    while True:
        base = free_udp_port(even=True)
        held: list[socket.socket] = []
        try:
            for port in range(base, base + 4):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                held.append(s)
                s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for s in held:
                s.close()
        return base


@dataclass
class SippRun:
    returncode: int
    output: str


async def run_sipp(
    workdir: Path,
    xml: str,
    target: tuple[str, int],
    calls: int = 1,
    transport: str = "u1",
    uas_port: int | None = None,
) -> SippRun:
    """Run one scenario from `workdir` (SIPp's pcaps under pcap/) until its calls end;
    with `uas_port`, SIPp serves on that port (its scenario starts with a recv)."""
    sipp = need_tool("sipp", "apt-get install sip-tester")
    pcap = workdir / "pcap"
    if not pcap.exists():
        pcap.mkdir()
        for capture in SIPP_PCAPS.glob("*.pcap"):
            (pcap / capture.name).symlink_to(capture)
    path = workdir / "scenario.xml"
    path.write_text(xml)
    process = await asyncio.create_subprocess_exec(
        sipp,
        f"{target[0]}:{target[1]}",
        "-sf", str(path),
        "-m", str(calls), "-l", str(calls), "-r", "10",
        "-i", "127.0.0.1", "-p", str(uas_port or free_udp_port()),
        "-mp", str(free_media_ports()),
        "-t", transport, "-nostdin", "-timeout", "60s", "-timeout_error", "-trace_err",
        "-error_file", str(workdir / "errors.log"),
        cwd=workdir,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        out, _ = await asyncio.wait_for(process.communicate(), RUN_S)
    except TimeoutError:
        process.kill()
        out, _ = await process.communicate()
    errors = workdir / "errors.log"
    text = out.decode(errors="replace")[-3000:]
    if errors.exists():
        text += "\n--- errors ---\n" + errors.read_text(errors="replace")[-3000:]
    return SippRun(process.returncode or 0, text)


def tone_pcap(path: Path, keys: str, *, tone_ms: int = 100, gap_ms: int = 100) -> Path:
    """A classic pcap (Ethernet, IPv4, UDP) of an RTP stream in PCMU (payload type 0,
    20 ms a packet) that sounds `keys` as DTMF tones, for ``play_pcap_audio``."""
    audio = [np.zeros(8 * 200)]
    for key in keys:
        audio += [dtmf_tone(key, tone_ms), np.zeros(8 * gap_ms)]
    ulaw = ulaw_encode(np.concatenate(audio))
    records = []
    for index in range(len(ulaw) // 160):
        rtp = (
            struct.pack("!BBHII", 0x80, 0, index, index * 160, 0x5EED)
            + ulaw[index * 160 : (index + 1) * 160]
        )
        udp = struct.pack("!HHHH", 40000, 40002, 8 + len(rtp), 0) + rtp
        ip = struct.pack(
            "!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), index, 0, 64, 17, 0,
            bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1]),
        ) + udp  # fmt: skip
        frame = b"\x00" * 12 + b"\x08\x00" + ip
        seconds, micros = divmod(index * 20_000, 1_000_000)
        records.append(struct.pack("<IIII", seconds, micros, len(frame), len(frame)) + frame)
    header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    path.write_bytes(header + b"".join(records))
    return path


# -- the gateway under test --

RELAY = RelayConfig(pseudonym_key="sip tests")


class Published:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def __call__(self, channel: str, data: dict[str, Any]) -> None:
        assert channel == "dialjam"
        self.events.append(data)

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == kind]

    def digits(self) -> str:
        return "".join(e["digit"] for e in self.of("digit"))


async def started(**settings: Any) -> tuple[SipGateway, Published]:
    base = random.randrange(30000, 60000, 2)
    config = SipConfig(
        host="127.0.0.1", port=0, rtp_ports=f"{base}-{base + 19}", silence_s=20.0, **settings
    )
    published = Published()
    gateway = SipGateway(config, RELAY, published, lambda code: None)
    await gateway.start()
    return gateway, published


def cleaned_up(gateway: SipGateway, published: Published) -> None:
    assert not gateway.ua.calls and not gateway.rtp
    assert len(gateway.free) == 10
    assert len(published.of("join")) == len(published.of("leave"))


async def sip_relay(
    start_relay: StartRelay, **settings: Any
) -> tuple[RunningRelay, aiohttp.ClientWebSocketResponse, tuple[str, int]]:
    """A relay answering SIP (no silence limit to end calls for us), a subscriber of its
    channel, and where SIPp calls it."""
    base = random.randrange(30000, 60000, 2)
    sip = SipConfig(host="127.0.0.1", port=0, rtp_ports=f"{base}-{base + 19}", silence_s=600.0)
    relay = await start_relay(sip=sip, **settings)
    sub = await subscribe(relay)
    host, _, port = health(relay.app[STATE])["sip"]["listening"].split()[1].rpartition(":")
    return relay, sub, (host, int(port))


async def joins(
    sub: aiohttp.ClientWebSocketResponse, runs: Sequence[asyncio.Task[SippRun]]
) -> list[dict[str, Any]]:
    """The joins of the calls SIPp places in `runs`, one each; a run that ends first
    fails the test with what SIPp said."""
    found: list[dict[str, Any]] = []
    while len(found) < len(runs):
        event = asyncio.ensure_future(relay_recv(sub, 60))
        done, _ = await asyncio.wait([event, *runs], return_when=asyncio.FIRST_COMPLETED)
        if event not in done:
            event.cancel()
            run = next(r for r in runs if r.done()).result()
            raise AssertionError(f"SIPp ended before its call joined:\n{run.output}")
        if event.result()["event"] == "join":
            found.append(event.result())
    return found
