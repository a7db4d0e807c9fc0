"""The SIP gateway against other real SIP software: SIPp calls through Kamailio (Debian
`kamailio`), which record-routes, so our 200 carries its Record-Route and our BYE
must go back through it (RFC 3261 §12.1.1, §16.12); SIPp as a carrier's registrar
checking our Digest answers; baresip (Debian `baresip-core`), a softphone, dialling,
sending keys as RFC 4733 events and hanging up."""

from __future__ import annotations

import asyncio
import contextlib
import glob
import json
import os
import signal
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.services import need_tool

from .sipp import Published, cleaned_up, free_udp_port, pause, play, run_sipp, scenario, started

# Debian's multiarch module folder (/usr/lib/x86_64-linux-gnu/kamailio/modules/ here).
MODULES = next((f"{p}/" for p in sorted(glob.glob("/usr/lib/*/kamailio/modules"))), "")
KAMAILIO_CFG = """#!KAMAILIO
debug=2
log_stderror=yes
children=1
disable_tcp=yes
auto_aliases=no
listen=udp:127.0.0.1:{port}
mpath="{modules}"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "siputils.so"
loadmodule "textops.so"

request_route {{
    if (!mf_process_maxfwd_header("10")) {{ sl_send_reply("483", "Too Many Hops"); exit; }}
    if (has_totag()) {{
        if (loose_route()) {{ t_relay(); exit; }}
        if (is_method("ACK")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}
        sl_send_reply("404", "Not here"); exit;
    }}
    if (is_method("CANCEL")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}
    record_route();
    $du = "sip:127.0.0.1:{gateway}";
    t_relay();
}}
"""

# SIPp keeps the route set of the 200 (rrs) and sends its ACK along it.
INVITE_VIA_PROXY = """  <send retrans="500">
    <![CDATA[

      INVITE sip:jam@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      From: "Caller" <sip:+4930555020[call_number]@[local_ip]:[local_port]>;tag=[pid]K[call_number]
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
      m=audio [media_port] RTP/AVP 8 101
      a=rtpmap:8 PCMA/8000
      a=rtpmap:101 telephone-event/8000

    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="200" rrs="true"/>
  <send>
    <![CDATA[

      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      [routes]
      From: "Caller" <sip:+4930555020[call_number]@[local_ip]:[local_port]>;tag=[pid]K[call_number]
      To: <sip:jam@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
"""

ANSWER_BYE = """  <recv request="BYE"/>
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


@contextlib.contextmanager
def kamailio(workdir: Path, gateway_port: int) -> Iterator[int]:
    """A record-routing Kamailio on a free port of 127.0.0.1, forwarding new calls to
    the gateway; stopped (its whole process group) afterwards."""
    binary = need_tool("kamailio", "apt-get install kamailio")
    port = free_udp_port()
    config = workdir / "kamailio.cfg"
    config.write_text(KAMAILIO_CFG.format(port=port, modules=MODULES, gateway=gateway_port))
    log = (workdir / "kamailio.log").open("wb")
    process = subprocess.Popen(
        [binary, "-f", str(config), "-DD", "-E", "-m", "32", "-M", "8", "-Y", str(workdir)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield port
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        log.close()


async def test_through_kamailio_the_route_set_is_kept_and_our_bye_goes_back_through_it(
    tmp_path: Path,
) -> None:
    gateway, published = await started()
    try:
        assert gateway.address is not None
        with kamailio(tmp_path, gateway.address[1]) as proxy:
            await asyncio.sleep(1.0)  # its workers start listening
            steps = INVITE_VIA_PROXY + pause(300) + play("pcap/dtmf_2833_6.pcap", 0) + ANSWER_BYE
            task = asyncio.create_task(
                run_sipp(tmp_path, scenario("proxy", steps), ("127.0.0.1", proxy))
            )
            await until_digits(published, 1)
            (call,) = gateway.ua.calls.values()
            assert call.routes and f"127.0.0.1:{proxy}" in call.routes[0]
            assert gateway.hang_up(call.caller) == 1
            run = await task
            assert run.returncode == 0, run.output + (tmp_path / "kamailio.log").read_text()
        assert published.digits() == "6"
        assert gateway.ua.counts["bye_sent"] == 1 and not gateway.ua.client  # answered
        cleaned_up(gateway, published)
    finally:
        await gateway.stop()


async def until_digits(published: Published, count: int, timeout: float = 30.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if len(published.of("digit")) >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{count} digits never came: {published.events}")


REGISTRAR = """  <recv request="REGISTER"/>
  <send>
    <![CDATA[

      SIP/2.0 401 Unauthorized
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]R
      [last_Call-ID:]
      [last_CSeq:]
      WWW-Authenticate: Digest realm="carrier.example", nonce="{nonce}", qop="auth", algorithm=MD5
      Content-Length: 0

    ]]>
  </send>
  <recv request="REGISTER" check_it="true">
    <action>
      <verifyauth assign_to="valid" username="venue" password="s3cret"/>
    </action>
  </recv>
  <nop test="valid" next="{good}"/>
  <send next="end">
    <![CDATA[

      SIP/2.0 403 Wrong Password
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]R
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
  <label id="{good}"/>
  <send>
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]R
      [last_Call-ID:]
      [last_CSeq:]
      [last_Contact:];expires=2
      Content-Length: 0

    ]]>
  </send>
"""


@pytest.mark.parametrize(
    ("password", "status", "registers"),
    [("s3cret", "registered", 4), ("wrong", "refused: 403 Wrong Password", 2)],
)
async def test_registering_with_a_carrier_answers_its_digest_challenge_and_refreshes(
    tmp_path: Path, password: str, status: str, registers: int
) -> None:
    need_tool("sipp", "apt-get install sip-tester")
    registrar = free_udp_port()
    gateway, _ = await started(
        register_registrar=f"127.0.0.1:{registrar}",
        register_user="venue",
        register_password=password,
        register_domain="carrier.example",
    )
    try:
        # SIPp as the registrar: a challenge, then the credentials verified (its own
        # Digest code), 200 with 2 s; the refresh at 1 s is challenged and checked again.
        steps = REGISTRAR.format(nonce="n0nce1", good="ok1")
        if password == "s3cret":
            steps += REGISTRAR.format(nonce="n0nce2", good="ok2")
        xml = scenario("registrar", steps + '  <label id="end"/>\n')
        run = await run_sipp(tmp_path, xml, ("127.0.0.1", 5060), uas_port=registrar)
        assert run.returncode == 0, run.output
        assert gateway.ua.registration is not None
        assert gateway.ua.registration.status == status
        assert gateway.ua.registration.sent == registers
    finally:
        await gateway.stop()


BARESIP_CONFIG = """poll_method\tepoll
sip_listen\t127.0.0.1:{sip}
sip_transports\tudp
audio_player\taubridge,nil
audio_source\tausine,440
audio_alert\taubridge,nil
ausrc_srate\t48000
auplay_srate\t48000
ausrc_channels\t2
auplay_channels\t2
module_path\t/usr/lib/baresip/modules
module\tg711.so
module\tausine.so
module\taubridge.so
module_app\taccount.so
module_app\tmenu.so
module_app\tctrl_tcp.so
ctrl_tcp_listen\t127.0.0.1:{control}
"""


def netstring(command: str, params: str = "") -> bytes:
    """A baresip ctrl_tcp command: JSON in a netstring."""
    data = json.dumps({"command": command, "params": params, "token": command}).encode()
    return str(len(data)).encode() + b":" + data + b","


async def test_baresip_dials_sends_keys_and_hangs_up(tmp_path: Path) -> None:
    binary = need_tool("baresip", "apt-get install baresip-core")
    gateway, published = await started()
    control = free_port()
    (tmp_path / "config").write_text(BARESIP_CONFIG.format(sip=free_udp_port(), control=control))
    (tmp_path / "accounts").write_text("<sip:+4930555777@127.0.0.1>;regint=0\n")
    log = (tmp_path / "baresip.log").open("wb")
    process = subprocess.Popen(
        [binary, "-f", str(tmp_path)], stdin=subprocess.DEVNULL, stdout=log, stderr=log
    )
    try:
        assert gateway.address is not None
        writer = await connect(control)
        writer.write(netstring("dial", f"sip:jam@127.0.0.1:{gateway.address[1]}"))
        await until(lambda: bool(published.of("join")), tmp_path)
        for key in "19#*":
            writer.write(netstring("sndcode", key))
            await asyncio.sleep(0.4)
        await until(lambda: len(published.of("digit")) == 4, tmp_path)
        writer.write(netstring("hangup"))
        await until(lambda: bool(published.of("leave")), tmp_path)
        writer.close()
        assert published.digits() == "19#*"
        assert published.of("join")[0]["display"] == "…77"
        assert published.of("leave")[0]["reason"] == "hangup"
        cleaned_up(gateway, published)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        log.close()
        await gateway.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def connect(port: int, timeout: float = 30.0) -> asyncio.StreamWriter:
    for _ in range(int(timeout / 0.1)):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            return writer
        except OSError:
            await asyncio.sleep(0.1)
    raise AssertionError(f"baresip's ctrl_tcp never listened on {port}")


async def until(done: Callable[[], bool], logs: Path, timeout: float = 30.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if done():
            return
        await asyncio.sleep(0.05)
    raise AssertionError((logs / "baresip.log").read_text(errors="replace")[-3000:])
