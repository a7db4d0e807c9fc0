"""The attacks of the relay's threat list, each speaking the real wire, from a process
of their own (their load never shares the billboard's interpreter).

    python -m tests.attacks.attacker KIND [KIND …] --url http://127.0.0.1:PORT \
        --seconds N [--publisher-token T] [--source 127.0.0.2] [--slow-source 127.0.0.3]

KINDs (several run together):

- ``poison``: bad frames of every kind: anonymous (refused, flooding, reconnecting),
  with a keypad's caller session, with the publisher token (data-level poison), raw
  (unmasked, over the hard cap, binary, not UTF-8).
- ``forge``: commands from strangers: on the public channel, on ``:control`` without
  or with the wrong token, a text/plain POST from a page elsewhere; and impersonation:
  whoever plays on the public channel is learnt by listening to it, then a session of
  the attacker's own, a forged session, anonymous frames and unsigned Twilio requests
  try to leave, join, play or kick as them.
- ``line-flood``: a rogue IVR with the publisher token: 2,000 joins at once, then
  10,000 more at 800 a second, a tenth of its frames the waiting line's presses.
- ``fd-flood``: 450 sockets from one address (``--source``) that never send a byte,
  more than its cap; each one closed is opened again.
- ``slowloris``: 1,100 sockets from one address (``--slow-source``) sending a request
  head one header byte a second, never finishing it; each one closed is opened again.
- ``squat``: anonymous clients subscribe and publish to thousands of random channels;
  a token holder opens new channels until the relay refuses them.
- ``history-flood``: 20 token holders publish frames as big as a token allows to 300
  channels as fast as the relay takes them.
- ``seed-leak``: phone numbers in every place a frame can hide one: the seed form's
  ``caller_id`` and ``ani``, a caller id, a nickname, a display, through the
  publisher token (WebSocket and HTTP), a keypad's session and anonymously.

Why this module is long: it is one program, the catalogue above, and each kind is one
method of one `Attacker` that owns what every kind shares: the deadline, the sockets
of each source address and the books the stage reads back. A kind is read whole
where it stands, with the frames it sends; spread over modules, the kinds would each
carry that shared state back in.

It prints ``attacking`` on stdout as it starts, and one JSON object at the end: what
it sent and what the relay answered, by part (``books``), the phone numbers it used
(``numbers``), and the seconds it ran on a CPU and waited for one (``cpu_s``,
``wait_s``). It runs at niceness 19: on a small test machine it shares the relay's
cores, and a real attacker brings its own.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import resource
import string
import sys
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from relay.gateways.twilio import SIGNATURE_HEADER, STREAM_PATH, VOICE_PATH
from relay.sessions import Sessions, derive_key
from tests.support.websocket import client_frame, upgrade_request

CHANNEL = "dialjam"
CONTROL = f"{CHANNEL}:control"
HARD_CAP = 65536  # the relay's token_max_frame: a token holder's biggest frame, plus one
FOREIGN = Sessions(derive_key("the attacker's own relay", "caller sessions"), 3600.0)
POISON_FRAMES = 10_000  # from strangers, and as many again with the publisher token
FLOOD_JOINS = 10_000
BURST_JOINS = 2_000  # at once: ten times the relay's publisher_burst
PACED_JOINS_PER_S = 800.0  # under its publisher_rate (1,000)


def letters(n: int, width: int = 6) -> str:
    """`n` written in lower-case letters: a caller id with no digit in it."""
    out = []
    for _ in range(width):
        n, r = divmod(n, 26)
        out.append(string.ascii_lowercase[r])
    return "".join(reversed(out))


# -- frames --------------------------------------------------------------------------

# Data that is not an event a stranger's channel may carry, or not one at all.
POISON_DATA: tuple[dict[str, Any], ...] = (
    {"event": "leave", "caller": "c-x", "reason": {}},  # killed the old billboard's link
    {"event": "command", "name": []},  # and so did this
    {"event": "command", "name": "tempo", "args": {"bpm": "fast"}},
    {"event": "command", "name": "kick", "args": []},
    {"event": "join", "caller": {}, "nick": []},
    {"event": "join", "caller": "c-x", "nick": {"a": 1}, "display": [1, 2], "source": {"x": 1}},
    {"event": "join", "caller": "c-x", "nick": "\u0000\u202e" * 200, "source": "\u202e" * 40},
    {"event": "digit", "caller": "c-x", "digit": []},
    {"event": "digit", "caller": "c-x", "digit": {"k": 5}},
    {"event": "digit", "caller": "c-x", "digit": True},
    {"event": "digit", "caller": "c-x", "digit": 10**18},
    {"event": "digit", "caller": "c-x", "digit": 5.5},
    {"event": "digit", "caller": "c-x", "digit": "\u0661"},
    {"event": "digit", "caller": "c-x", "digit": "55"},
    {"event": "digit", "caller": None, "digit": "5"},
    {"event": "digit", "caller": "c-" + "x" * 5000, "digit": "5"},
    {"event": "digit", "caller": "", "digit": "5"},
    {"event": ["join"]},
    {"event": None},
    {"event": "x" * 3000},
    {"event": "state", "tracks": "x", "line": {}},
    {"event": "assign", "caller": "c-x", "track": {}, "line": "first"},
    {"caller_id": {}, "command": "5"},
    {"caller_id": "c-x", "command": []},
    {"caller_id": None, "command": None},
    {"ani": ["1"], "command": "5"},
    {"command": {"nested": [[[[[]]]]]}},
    {},
)

# Whole frames a parser must refuse: not JSON, not an object, wrong types and ids.
BAD_FRAMES: tuple[bytes, ...] = (
    b"not json",
    b"{",
    b"",
    b"[]",
    b"[1,2,3]",
    b"null",
    b"42",
    b'"a string"',
    b'{"a":NaN}',
    b'{"a":1e999}',
    b'{"type":"ping","n":' + str(2**70).encode() + b"}",
    b"[" * 5000 + b"]" * 5000,
    b'{"a":"\xff\xfe"}',
    b'{"type":1}',
    b'{"type":"nope"}',
    b'{"type":"publisher"}',
    b'{"type":"publisher","id":"dialjam"}',
    b'{"type":"publisher","id":"dialjam","data":[]}',
    b'{"type":"publisher","id":"dialjam","data":{},"ack":"yes"}',
    b'{"type":"publisher","id":"","data":{}}',
    b'{"type":"publisher","id":"' + b"x" * 100 + b'","data":{}}',
    b'{"type":"publisher","id":"a b","data":{}}',
    b'{"type":"subscriber","id":"dialjam","v":3}',
    b'{"type":"subscriber","id":"dialjam","v":true}',
    b'{"type":"subscriber","id":"dialjam","since":-1,"v":2}',
    b'{"type":"subscriber","id":"dialjam","since":5}',
    b'{"type":"subscriber","id":"dialjam","v":2,"epoch":[]}',
    b'{"type":"ping","token":5}',
    b'{"type":"ping","session":[]}',
    b'{"type":"ping","token":"not-a-token"}',
    b'{"type":"publisher","id":"dialjam","session":"c-x.1.x","data":{"event":"join"}}',
)


def publish(channel: str, data: dict[str, Any], **extra: Any) -> bytes:
    return orjson.dumps({"type": "publisher", "id": channel, "data": data, **extra})


def poison_frames() -> list[bytes]:
    """Every bad frame, and every poison datum as a publisher frame on the public
    channel, on :control and on :state."""
    out = list(BAD_FRAMES)
    for data in POISON_DATA:
        out += [publish(CHANNEL, data), publish(CONTROL, data), publish(f"{CHANNEL}:state", data)]
    return out


# -- the attacker ----------------------------------------------------------------------


class Attacker:
    """One process's attacks: their sockets, their deadline and their books."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.url = args.url.rstrip("/")
        host_port = self.url.split("://", 1)[1]
        self.host, _, port = host_port.partition(":")
        self.port = int(port)
        self.publisher_token = args.publisher_token
        self.source = args.source
        self.seconds: float = args.seconds
        self.end: float = time.monotonic() + self.seconds
        self.books: dict[str, Counter[str]] = {}
        self.numbers: list[str] = []
        self.rng = random.Random(args.seed)
        self.session: aiohttp.ClientSession | None = None
        self.own_callers: set[str] = set()  # the attacker's own sessions' callers
        self.slow_source = args.slow_source
        self.readers: set[asyncio.Task[None]] = set()  # held: the loop keeps only weak refs

    def book(self, kind: str, what: str, n: int = 1) -> None:
        self.books.setdefault(kind, Counter())[what] += n

    def left(self) -> float:
        return self.end - time.monotonic()

    def over(self) -> bool:
        return time.monotonic() >= self.end

    # -- connections --

    def client(self) -> aiohttp.ClientSession:
        """Every request on a socket of its own, as many at once as asked."""
        return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, force_close=True))

    async def ws(
        self, kind: str, token: str | None = None, path: str = "/ws", **kwargs: Any
    ) -> aiohttp.ClientWebSocketResponse | None:
        """A WebSocket on the relay (its replies are read and counted), or None when
        the relay refused it."""
        assert self.session is not None
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        headers.update(kwargs.pop("headers", {}))
        try:
            ws: aiohttp.ClientWebSocketResponse = await self.session.ws_connect(
                self.url.replace("http://", "ws://", 1) + path,
                headers=headers,
                max_msg_size=0,
                **kwargs,
            )
        except aiohttp.WSServerHandshakeError as exc:
            self.book(kind, f"upgrade refused {exc.status}")
            return None
        except (aiohttp.ClientError, OSError) as exc:
            self.book(kind, f"connect failed {type(exc).__name__}")
            return None
        reader = asyncio.get_running_loop().create_task(self.read(kind, ws))
        self.readers.add(reader)
        reader.add_done_callback(self.readers.discard)
        return ws

    async def read(self, kind: str, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Count what the relay answers: error codes, and how the socket ended."""
        with contextlib.suppress(aiohttp.ClientError, OSError, asyncio.CancelledError):
            async for msg in ws:
                if msg.type is not aiohttp.WSMsgType.TEXT:
                    continue
                try:
                    obj = orjson.loads(msg.data)
                except orjson.JSONDecodeError:
                    continue
                for item in obj if isinstance(obj, list) else [obj]:
                    if not isinstance(item, dict):
                        continue
                    if item.get("type") == "error":
                        self.book(kind, f"error {item.get('code')}")
                    elif item.get("type") in ("subscribed", "ack"):
                        self.book(kind, str(item.get("type")))
                    elif item.get("type") == "event":
                        self.book(kind, "event")
        self.book(kind, f"closed {ws.close_code}")

    async def send(
        self, ws: aiohttp.ClientWebSocketResponse, frame: bytes, binary: bool = False
    ) -> bool:
        """Send one frame; False when the socket is gone. A text frame is sent as the
        bytes given, which need not even be UTF-8."""
        if ws.closed:
            return False
        opcode = aiohttp.WSMsgType.BINARY if binary else aiohttp.WSMsgType.TEXT
        try:
            await ws.send_frame(frame, opcode)
        except (aiohttp.ClientError, OSError, RuntimeError):
            return False
        return True

    async def raw(self, source: str | None = None) -> tuple[asyncio.StreamReader, Any]:
        local = (source, 0) if source else None
        return await asyncio.open_connection(self.host, self.port, local_addr=local)

    async def post(
        self, kind: str, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, Any]:
        assert self.session is not None
        try:
            async with self.session.post(self.url + path, data=body, headers=headers) as resp:
                text = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, OSError) as exc:
            self.book(kind, f"post failed {type(exc).__name__}")
            return 0, None
        try:
            answer = orjson.loads(text)
        except orjson.JSONDecodeError:
            answer = None
        code = answer.get("code") if isinstance(answer, dict) else None
        self.book(kind, f"http {status} {code}" if code else f"http {status}")
        return status, answer

    async def session_token(self, kind: str) -> dict[str, Any] | None:
        status, answer = await self.post(
            f"{kind} session",
            "/session",
            orjson.dumps({"channel": CHANNEL}),
            {"Content-Type": "text/plain"},
        )
        return answer if status == 200 and isinstance(answer, dict) else None

    # -- poison --

    async def poison(self) -> None:
        frames = poison_frames()
        await asyncio.gather(
            *(self.poison_anonymous(frames, n) for n in range(3)),
            self.poison_keypad(),
            self.poison_publisher(),
            self.poison_raw(),
            self.poison_http(),
        )

    async def poison_anonymous(self, frames: list[bytes], n: int) -> None:
        """Strangers pour bad frames; closed for flooding, they come back."""
        budget = POISON_FRAMES // 3 + 1  # shared by three strangers
        sent = 0
        while not self.over() and sent < budget:
            ws = await self.ws("poison anonymous")
            if ws is None:
                await asyncio.sleep(0.5)
                continue
            while not ws.closed and not self.over() and sent < budget:
                for _ in range(10):
                    if await self.send(ws, frames[(sent + n) % len(frames)]):
                        sent += 1
                        self.book("poison anonymous", "frames")
                await asyncio.sleep(0.01)
            await ws.close()
            await asyncio.sleep(0.3)

    async def poison_keypad(self) -> None:
        """A keypad with a session of its own sends poison data, inside its rate."""
        kind = "poison keypad"
        answer = await self.session_token(kind)
        if answer is None:
            return
        token = answer["session"]
        ws = await self.ws(kind)
        if ws is None:
            return
        n = 0
        while not self.over():
            data = POISON_DATA[n % len(POISON_DATA)]
            if await self.send(ws, publish(CHANNEL, data, session=token)):
                self.book(kind, "frames")
            if n % 50 == 0 and await self.send(ws, b"\x00\x01binary", binary=True):
                self.book(kind, "frames")
            n += 1
            await asyncio.sleep(1 / 8)  # a keypad's caller may send 10 a second

    async def poison_publisher(self) -> None:
        """A seed publisher's token: data-level poison, 10,000 frames over the first four
        fifths of the attack: at niceness 19 on a busy machine the attacker falls behind
        its pace, and still sends them all before the end."""
        kind = "poison publisher"
        ws = await self.ws(kind, self.publisher_token)
        if ws is None:
            return
        spread = POISON_FRAMES / max(1.0, 0.8 * (self.seconds - 1))
        began = time.monotonic()
        for n in range(POISON_FRAMES):
            if self.over():
                break
            if await self.send(ws, publish(CHANNEL, POISON_DATA[n % len(POISON_DATA)])):
                self.book(kind, "frames")
            ahead = began + n / spread - time.monotonic()
            if ahead > 0:
                await asyncio.sleep(ahead)
        await asyncio.sleep(max(0.0, self.left()))

    async def poison_raw(self) -> None:
        """Frames a WebSocket library would never send: unmasked, over the hard cap
        (announced and real), binary, not UTF-8."""
        kind = "poison raw"
        bad = (
            client_frame(b'{"type":"ping"}', masked=False),
            client_frame(b'{"type":"ping","pad":"' + b"x" * (HARD_CAP + 10) + b'"}'),
            bytes([0x81, 0xFF]) + (2**31).to_bytes(8, "big") + b"\x00\x00\x00\x00",
            client_frame(b"\x00\x01\x02", opcode=0x2),
            client_frame(b'{"type":"ping","x":"\xc3\x28"}'),
            client_frame(b"x" * 10, opcode=0x0),  # a continuation with nothing to continue
            client_frame(b"", opcode=0x3),  # a reserved opcode
        )
        n = 0
        while not self.over():
            try:
                reader, writer = await self.raw()
                writer.write(upgrade_request(host=f"{self.host}:{self.port}"))
                await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
                writer.write(bad[n % len(bad)])
                self.book(kind, "frames")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(reader.read(), 3)
                writer.close()
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
                self.book(kind, f"failed {type(exc).__name__}")
            except TimeoutError:
                self.book(kind, "timed out")
            n += 1
            await asyncio.sleep(0.5)

    async def poison_http(self) -> None:
        kind = "poison http"
        n = 0
        bodies = list(BAD_FRAMES) + [orjson.dumps(d) for d in POISON_DATA]
        while not self.over():
            body = bodies[n % len(bodies)]
            await self.post(kind, f"/publish/{CHANNEL}", body, {"Content-Type": "text/plain"})
            if n % 3 == 0:
                await self.post(
                    kind,
                    f"/publish/{CHANNEL}",
                    body,
                    {"Authorization": f"Bearer {self.publisher_token}"},
                )
            n += 1
            await asyncio.sleep(0.1)

    # -- forged commands and impersonation --

    async def forge(self) -> None:
        victims: set[str] = set()
        await asyncio.gather(
            self.forge_commands(victims),
            self.forge_http(),
            self.listen_for_victims(victims),
            self.impersonate(victims),
            self.forge_twilio(),
        )

    def commands(self, victims: set[str]) -> list[dict[str, Any]]:
        caller = next(iter(victims), "c-someone")
        return [
            {"event": "command", "name": "tempo", "args": {"bpm": 40}},
            {"event": "command", "name": "kick", "args": {"caller": caller}},
            {"event": "command", "name": "pause", "args": {"on": True}},
            {"event": "command", "name": "panic"},
            {"event": "command", "name": "mute", "args": {"caller": caller, "on": True}},
            {"event": "command", "name": "key", "args": {"key": "F#"}},
            {"event": "command", "name": "scale", "args": {"name": "locrian"}},
        ]

    async def forge_commands(self, victims: set[str]) -> None:
        """Commands sent over WebSockets by strangers, a keypad, a seed publisher and
        guessed tokens, on the public channel and on :control."""
        kind = "forge ws"
        answer = await self.session_token(kind)
        session = answer["session"] if answer else None
        while not self.over():
            anon = await self.ws(kind)
            ivr = await self.ws(kind, self.publisher_token)
            guessed = await self.ws(kind, path="/ws?token=operator")
            keypad = await self.ws(kind)
            for _ in range(20):
                if self.over():
                    break
                for command in self.commands(victims):
                    frames = [
                        (anon, publish(CHANNEL, command)),
                        (anon, publish(CONTROL, command)),
                        (anon, publish(CONTROL, command, token="operator-secret")),
                        (ivr, publish(CHANNEL, command)),
                        (ivr, publish(CONTROL, command)),
                        (guessed, publish(CONTROL, command)),
                    ]
                    if session:
                        frames.append((keypad, publish(CHANNEL, command, session=session)))
                        frames.append((keypad, publish(CONTROL, command, session=session)))
                    for ws, frame in frames:
                        if ws is not None and await self.send(ws, frame):
                            self.book(kind, "forged commands")
                    await asyncio.sleep(0.05)
            for ws in (anon, ivr, guessed, keypad):
                if ws is not None:
                    await ws.close()

    async def forge_http(self) -> None:
        """A page elsewhere posts text/plain (no preflight) to /publish; a script
        without the operator token posts to :control."""
        kind = "forge http"
        evil = {"Origin": "https://evil.example", "Content-Type": "text/plain"}
        n = 0
        while not self.over():
            command = self.commands(set())[n % 7]
            body = orjson.dumps(command)
            await self.post(kind, f"/publish/{CONTROL}", body, evil)
            await self.post(kind, f"/publish/{CHANNEL}", body, evil)
            await self.post(kind, f"/publish/{CONTROL}", body, {"Content-Type": "text/plain"})
            await self.post(
                kind,
                f"/publish/{CONTROL}",
                body,
                {"Authorization": f"Bearer {self.publisher_token}"},
            )
            await self.post(kind, f"/publish/{CONTROL}", body, {"Authorization": "Bearer operator"})
            n += 1
            await asyncio.sleep(0.1)

    async def listen_for_victims(self, victims: set[str]) -> None:
        """Anyone may listen to the public channel: the callers who play there are
        whom to impersonate."""
        kind = "forge listen"
        ws = await self.ws(kind)
        if ws is None:
            return
        await self.send(ws, orjson.dumps({"type": "subscriber", "id": CHANNEL}))
        own = self.own_callers
        with contextlib.suppress(aiohttp.ClientError, OSError):
            while not self.over():
                try:
                    msg = await ws.receive(timeout=max(0.1, self.left()))
                except TimeoutError:
                    break
                if msg.type is not aiohttp.WSMsgType.TEXT:
                    break
                data = orjson.loads(msg.data)
                caller = data.get("caller") if isinstance(data, dict) else None
                if isinstance(caller, str) and caller not in own and caller not in victims:
                    victims.add(caller)
                    self.book(kind, "victims found")
        await ws.close()

    async def impersonate(self, victims: set[str]) -> None:
        """Play as the victims: with a session of the attacker's own (the relay stamps
        its own caller), forged sessions in their names, anonymous frames, HTTP."""
        kind = "impersonate"
        while not victims and not self.over():
            await asyncio.sleep(0.1)
        while not self.over():
            answer = await self.session_token(kind)
            if answer is None:
                await asyncio.sleep(1.0)
                continue
            self.own_callers.add(answer["caller"])
            mine = answer["session"]
            _, expires, mac = mine.split(".")
            ws = await self.ws(kind)
            anon = await self.ws(kind)
            if ws is None or anon is None:
                await asyncio.sleep(0.5)
                continue
            for _ in range(40):
                if self.over() or ws.closed:
                    break
                for victim in list(victims - self.own_callers):
                    forged = f"{victim}.{expires}.{mac}"
                    later = f"{victim}.{int(expires) + 10**6}.{mac}"
                    # A well-made session in the victim's name, from another
                    # installation's key (one the attacker runs itself).
                    foreign = FOREIGN.mint(CHANNEL, time.time(), victim).token
                    data = (
                        {"event": "leave", "caller": victim, "reason": "hangup"},
                        {"event": "join", "caller": victim, "nick": "mallory"},
                        {"event": "digit", "caller": victim, "digit": "0"},
                    )
                    for item in data:
                        for frame in (
                            publish(CHANNEL, item, session=mine),
                            publish(CHANNEL, item, session=forged),
                            publish(CHANNEL, item, session=later),
                            publish(CHANNEL, item, session=foreign),
                        ):
                            if await self.send(ws, frame):
                                self.book(kind, "frames")
                        if await self.send(anon, publish(CHANNEL, item)):
                            self.book(kind, "frames")
                        body = orjson.dumps({**item, "session": forged})
                        await self.post(
                            kind, f"/publish/{CHANNEL}", body, {"Content-Type": "text/plain"}
                        )
                await asyncio.sleep(0.25)
            await ws.close()
            await anon.close()

    async def forge_twilio(self) -> None:
        """A stranger poses as Twilio: an unsigned or badly signed voice webhook, and a
        stream upgrade the same."""
        kind = "forge twilio"
        form = {
            "AccountSid": "AC" + "0" * 32,
            "CallSid": "CA" + "1" * 32,
            "From": "+15550009999",
            "To": "+15555550100",
        }
        self.numbers.append(form["From"])
        assert self.session is not None
        while not self.over():
            for headers in ({}, {SIGNATURE_HEADER: "bm90IGEgc2lnbmF0dXJl"}):
                try:
                    async with self.session.post(
                        self.url + VOICE_PATH, data=form, headers=headers
                    ) as resp:
                        self.book(kind, f"voice {resp.status}")
                except (aiohttp.ClientError, OSError) as exc:
                    self.book(kind, f"voice failed {type(exc).__name__}")
                ws = await self.ws(kind, path=STREAM_PATH, headers=headers)
                if ws is not None:
                    self.book(kind, "stream opened")
                    await ws.close()
            await asyncio.sleep(0.25)

    # -- a line flood --

    async def line_flood(self) -> None:
        """A rogue IVR with the publisher token: a burst of joins as fast as the socket
        takes them (past its publisher_burst the relay reads them later), then 10,000
        joins just under its publisher_rate, while those in the waiting line press
        keys."""
        kind = "line flood"
        ws = await self.ws(kind, self.publisher_token)
        if ws is None:
            return
        await asyncio.sleep(min(2.0, self.left()))  # the legitimate callers play first
        n = 0

        async def join() -> None:
            nonlocal n
            frame = publish(CHANNEL, {"event": "join", "caller": f"c-fl{letters(n)}"})
            if await self.send(ws, frame):
                self.book(kind, "joins")
            n += 1

        for _ in range(BURST_JOINS):
            await join()
        began, paced = time.monotonic(), n
        while n < paced + FLOOD_JOINS and not self.over():
            await join()
            if n % 10 == 0:
                caller = f"c-fl{letters(self.rng.randrange(paced, paced + 300))}"
                digit = self.rng.choice("0123456789*#")
                frame = publish(CHANNEL, {"event": "digit", "caller": caller, "digit": digit})
                if await self.send(ws, frame):
                    self.book(kind, "digits")
            ahead = began + (n - paced) / PACED_JOINS_PER_S - time.monotonic()
            if ahead > 0:
                await asyncio.sleep(ahead)
        await asyncio.sleep(max(0.0, self.left()))
        await ws.close()

    # -- one address, many sockets --

    async def fd_flood(self) -> None:
        """Sockets that never send a byte, kept at `target` from one address; the
        relay's answer (503 at once, or 408 at its header deadline) is counted."""
        kind = "fd flood"
        target = 450
        open_now = 0

        async def one() -> None:
            nonlocal open_now
            while not self.over():
                try:
                    reader, writer = await self.raw(self.source)
                except OSError as exc:
                    self.book(kind, f"connect failed {type(exc).__name__}")
                    await asyncio.sleep(0.2)
                    continue
                open_now += 1
                self.book(kind, "sockets opened")
                peak = self.books[kind]["most open at once"]
                if open_now > peak:
                    self.book(kind, "most open at once", open_now - peak)
                try:
                    answer = await asyncio.wait_for(reader.read(64), max(0.1, self.left()))
                    status = answer[9:12].decode(errors="replace") if answer else "closed"
                    self.book(kind, f"answered {status}")
                except TimeoutError:
                    self.book(kind, "held to the end")
                except OSError as exc:
                    self.book(kind, f"reset {type(exc).__name__}")
                finally:
                    open_now -= 1
                    writer.close()
                await asyncio.sleep(0.05)

        workers = [asyncio.get_running_loop().create_task(one()) for _ in range(target)]
        await asyncio.gather(*workers)

    async def slowloris(self) -> None:
        """Request heads that never end: a header byte a second, on as many sockets as
        one address may hold and more."""
        kind = "slowloris"
        target = 1100

        async def one(n: int) -> None:
            await asyncio.sleep(n * 0.002)  # ramp up over two seconds
            while not self.over():
                try:
                    reader, writer = await self.raw(self.slow_source)
                except OSError as exc:
                    self.book(kind, f"connect failed {type(exc).__name__}")
                    await asyncio.sleep(0.5)
                    continue
                self.book(kind, "sockets opened")
                try:
                    writer.write(b"GET /keypad HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                    read = asyncio.get_running_loop().create_task(reader.read(64))
                    while not self.over():
                        done, _ = await asyncio.wait({read}, timeout=1.0)
                        if done:
                            answer = read.result()
                            status = answer[9:12].decode(errors="replace") if answer else "closed"
                            self.book(kind, f"answered {status}")
                            break
                        writer.write(b"X")  # one more byte of a header that never ends
                        self.book(kind, "header bytes")
                    read.cancel()
                except OSError as exc:
                    self.book(kind, f"reset {type(exc).__name__}")
                finally:
                    writer.close()
                await asyncio.sleep(0.05)

        workers = [asyncio.get_running_loop().create_task(one(n)) for n in range(target)]
        await asyncio.gather(*workers)

    # -- channels and history --

    async def squat(self) -> None:
        await asyncio.gather(
            *(self.squat_anonymous(n) for n in range(10)),
            self.squat_with_token(),
        )

    def random_channel(self) -> str:
        return "sq-" + "".join(self.rng.choices(string.ascii_lowercase, k=12))

    async def squat_anonymous(self, n: int) -> None:
        """Strangers try to open thousands of channels: a subscribe to a new name, a
        publish asking an ack on another; and to take the installation's :control."""
        kind = "squat anonymous"
        while not self.over():
            ws = await self.ws(kind)
            if ws is None:
                await asyncio.sleep(0.5)
                continue
            await self.send(ws, publish(CONTROL, {"event": "command", "name": "panic"}))
            while not ws.closed and not self.over():
                for frame in (
                    orjson.dumps({"type": "subscriber", "id": self.random_channel(), "v": 2}),
                    publish(self.random_channel(), {"x": 1}, ack=True),
                ):
                    if await self.send(ws, frame):
                        self.book(kind, "channel attempts")
                await asyncio.sleep(0.1)  # 20 frames a second: the stranger's rate

    async def squat_with_token(self) -> None:
        """A token holder opens channels until the relay holds as many as it may (a
        second after the start, so that a history flood beside it has its channels)."""
        kind = "squat token"
        ws = await self.ws(kind, self.publisher_token)
        if ws is None:
            return
        await asyncio.sleep(1.0)
        while not self.over() and not ws.closed:
            for _ in range(50):
                if await self.send(ws, publish(self.random_channel(), {"x": 1}, ack=True)):
                    self.book(kind, "channel attempts")
            await asyncio.sleep(0.02)
        await ws.close()

    async def history_flood(self) -> None:
        """Token holders publish frames as big as a token allows (one byte under the
        hard cap) to many channels, as fast as the relay takes them."""
        pad = "x" * (HARD_CAP - 200)
        channels = [f"hist-{letters(n, 3)}" for n in range(300)]

        async def holder(n: int) -> None:
            kind = "history flood"
            ws = await self.ws(kind, self.publisher_token)
            if ws is None:
                return
            k = n
            while not self.over() and not ws.closed:
                channel = channels[k % len(channels)]
                frame = publish(channel, {"n": k, "pad": pad})  # just under the hard cap
                if await self.send(ws, frame):
                    self.book(kind, "frames")
                    self.book(kind, "bytes", len(frame))
                k += 7
                await asyncio.sleep(0)
            await ws.close()

        await asyncio.gather(*(holder(n) for n in range(20)))

    # -- seed numbers --

    async def seed_leak(self) -> None:
        numbers = [f"+1555{n:07d}" for n in self.rng.sample(range(10**7), 40)]
        self.numbers += numbers
        kind = "seed leak"
        ivr = await self.ws(kind, self.publisher_token)
        seed_ws = await self.ws(kind, path=f"/ws?token={self.publisher_token}")
        anon = await self.ws(kind)
        answer = await self.session_token(kind)
        keypad = await self.ws(kind)
        n = 0
        while not self.over():
            number = numbers[n % len(numbers)]
            digits = number.lstrip("+")
            spaced = f"+1 ({digits[1:4]}) {digits[4:7]}-{digits[7:]}"
            forms: list[dict[str, Any]] = [
                {"caller_id": number, "command": "5"},
                {"caller_id": digits, "command": 7},
                {"caller_id": int(digits), "command": "1"},
                {"ani": spaced, "command": "#"},
                {"caller_id": number, "command": "3", "display": number, "nick": digits},
                {"event": "join", "caller": f"c-{digits}", "nick": f"call {spaced}"},
                {"event": "digit", "caller": f"c-{digits}", "digit": "2"},
                {"event": "join", "caller": spaced, "display": number, "nick": digits[-7:]},
                {"event": "digit", "caller": number, "digit": "4", "source": digits},
                {"event": "join", "caller": "c-seedy", "nick": " ".join(digits), "display": spaced},
                {"caller_id": "c-seedy", "command": "6", "display": spaced},
                {"event": "join", "caller": "c-sourcy", "source": digits[-11:]},
                {"event": "digit", "caller": "c-sourcy", "digit": "8", "source": digits[-10:]},
                {"event": "join", "caller": "c-nicky", "nick": f"{digits[1:4]}-{digits[4:]}"},
                {"event": "leave", "caller": f"c-{digits}", "reason": digits},
            ]
            for data in forms:
                for ws in (ivr, seed_ws, anon):
                    if ws is not None and await self.send(ws, publish(CHANNEL, data)):
                        self.book(kind, "frames")
                if keypad is not None and answer is not None:
                    stamped = publish(CHANNEL, data, session=answer["session"])
                    if await self.send(keypad, stamped):
                        self.book(kind, "frames")
            await self.post(
                kind,
                f"/publish/{CHANNEL}",
                orjson.dumps({"caller_id": number, "command": "9"}),
                {"Authorization": f"Bearer {self.publisher_token}"},
            )
            n += 1
            await asyncio.sleep(0.1)

    # -- running --

    async def nothing(self) -> None:
        """No attack: the figures of a quiet night, to compare with."""
        await asyncio.sleep(max(0.0, self.left()))

    async def run(self, kinds: Sequence[str]) -> None:
        runs: dict[str, Callable[[], Coroutine[Any, Any, None]]] = {
            "none": self.nothing,
            "poison": self.poison,
            "forge": self.forge,
            "line-flood": self.line_flood,
            "fd-flood": self.fd_flood,
            "slowloris": self.slowloris,
            "squat": self.squat,
            "history-flood": self.history_flood,
            "seed-leak": self.seed_leak,
        }
        async with self.client() as session:
            self.session = session
            tasks = [asyncio.get_running_loop().create_task(runs[kind]()) for kind in kinds]
            print("attacking", flush=True)
            # A send the relay holds back (TCP pushing back) may outlast the attack.
            done, pending = await asyncio.wait(tasks, timeout=self.left() + 1.0)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=2.0)
            for task in done:
                if task.exception() is not None:
                    self.book("attacker", f"crashed {task.exception()!r}"[:200])


def cpu_wait() -> float:
    """Seconds this process's threads were runnable but waited for a CPU (the kernel's
    run-queue delay, /proc/self/task/TID/schedstat): what other processes took."""
    waited = 0
    for task in Path("/proc/self/task").glob("*"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            waited += int((task / "schedstat").read_text().split()[1])
    return waited / 1e9


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.attacks.attacker")
    p.add_argument("kinds", nargs="+")
    p.add_argument("--url", required=True)
    p.add_argument("--seconds", type=float, default=15.0)
    p.add_argument("--publisher-token", default="")
    p.add_argument("--source", default=None, help="fd-flood: the local address to attack from")
    p.add_argument("--slow-source", default=None, help="slowloris: the local address")
    p.add_argument("--seed", type=int, default=2010)
    args = p.parse_args(argv)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    # The attack's own CPU is not the relay's to lose: on a small test machine the two
    # share cores, and a real attacker brings its own. At niceness 19 it takes every
    # cycle the relay leaves idle, and (almost) none the relay wants.
    os.nice(19)
    attacker = Attacker(args)
    try:
        import uvloop

        factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    except ImportError:
        factory = asyncio.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(attacker.run(args.kinds))
    books = {kind: dict(counter) for kind, counter in attacker.books.items()}
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result = {
        "books": books,
        "numbers": attacker.numbers,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "wait_s": cpu_wait(),
    }
    sys.stdout.write(orjson.dumps(result).decode() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
