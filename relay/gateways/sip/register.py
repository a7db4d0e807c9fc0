"""Registering with a carrier (RFC 3261 §10) when the trunk asks for it: REGISTER as a
client transaction (timer E/F), answered challenges with HTTP Digest (RFC 2617, RFC
7616: MD5, with ``qop=auth`` when offered), refreshed at half the granted expiry,
and tried again after a failure (30 s doubling to 10 min). Pure, on the user agent's
timers: its `status` says what the carrier last answered (never the password)."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from .message import Message, SipError, name_addr, render
from .timers import T2, Action, Send, Timers, retransmit

_PARAM = re.compile(r'([A-Za-z-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))')
RETRY_S = 30.0
RETRY_MAX_S = 600.0


def challenge(header: str) -> dict[str, str] | None:
    """The parameters of a ``Digest`` challenge (WWW-Authenticate / Proxy-Authenticate),
    or None when it is another scheme or has no realm and nonce."""
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != "digest":
        return None
    params = {m.group(1).lower(): m.group(2) or m.group(3) or "" for m in _PARAM.finditer(rest)}
    if not params.get("realm") or not params.get("nonce"):
        return None
    return params


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def digest(
    params: dict[str, str], user: str, password: str, method: str, uri: str, nc: int, cnonce: str
) -> str:
    """The Authorization value answering `params` (RFC 2617 §3.2.2; RFC 7616 §3.4)."""
    realm, nonce = params["realm"], params["nonce"]
    ha1 = _md5(f"{user}:{realm}:{password}")
    ha2 = _md5(f"{method}:{uri}")
    qops = [q.strip() for q in params.get("qop", "").split(",")]
    fields = [
        f'username="{user}"', f'realm="{realm}"', f'nonce="{nonce}"', f'uri="{uri}"',
    ]  # fmt: skip
    if "auth" in qops:
        count = f"{nc:08x}"
        answer = _md5(f"{ha1}:{nonce}:{count}:{cnonce}:auth:{ha2}")
        fields += [f'response="{answer}"', f'cnonce="{cnonce}"', "qop=auth", f"nc={count}"]
    else:
        fields.append(f'response="{_md5(f"{ha1}:{nonce}:{ha2}")}"')
    fields.append("algorithm=MD5")
    if "opaque" in params:
        fields.append(f'opaque="{params["opaque"]}"')
    return "Digest " + ", ".join(fields)


@dataclass
class Registration:
    """One binding at a registrar: `start` sends the first REGISTER; `response` takes
    the registrar's answers (the user agent hands them over)."""

    timers: Timers
    registrar: tuple[str, int]
    domain: str
    user: str
    password: str
    contact: str  # host:port we are reached at
    expires: int = 600
    status: str = "starting"
    registered_until: float = 0.0
    sent: int = 0

    def __post_init__(self) -> None:
        self.call_id = secrets.token_hex(10) + "@dialjam"
        self.tag = secrets.token_hex(4)
        self.cseq = 0
        self.branch = ""
        self.auth: dict[str, str] | None = None
        self.nc = 0
        self.answered_challenge = ""
        self.retry = RETRY_S
        self.stopped = False

    @property
    def uri(self) -> str:
        return f"sip:{self.domain}"

    def start(self, now: float, expires: int | None = None) -> list[Action]:
        """Send a REGISTER now (`expires` 0: remove the binding, at shutdown)."""
        if self.stopped:
            return []
        self.cseq += 1
        self.branch = "z9hG4bK" + secrets.token_hex(8)
        aor = f"<sip:{self.user}@{self.domain}>"
        headers = [
            ("Via", f"SIP/2.0/UDP {self.contact};branch={self.branch};rport"),
            ("Max-Forwards", "70"),
            ("From", f"{aor};tag={self.tag}"),
            ("To", aor),
            ("Call-ID", self.call_id),
            ("CSeq", f"{self.cseq} REGISTER"),
            ("Contact", f"<sip:{self.user}@{self.contact}>"),
            ("Expires", str(self.expires if expires is None else expires)),
        ]
        if self.auth is not None:
            self.nc += 1
            value = digest(
                self.auth, self.user, self.password, "REGISTER", self.uri, self.nc,
                secrets.token_hex(8),
            )  # fmt: skip
            headers.append((self.auth["header"], value))
        send = Send(render(f"REGISTER {self.uri} SIP/2.0", headers), self.registrar)
        branch = self.branch
        self.sent += 1

        def give_up(at: float) -> list[Action]:
            self.status = "no answer from the registrar"
            return self._again(at)

        retransmit(
            self.timers, now, send, lambda: self.branch == branch,
            cap=T2, give_up=give_up, reliable=False,
        )  # fmt: skip
        return [send]

    def stop(self, now: float) -> list[Action]:
        """Shutdown: remove the binding (Expires: 0), once."""
        actions = self.start(now, expires=0) if self.status == "registered" else []
        self.stopped = True
        return actions

    def response(self, msg: Message, now: float) -> list[Action]:
        if msg.cseq() != (self.cseq, "REGISTER") or msg.status < 200 or self.stopped:
            return []
        self.branch = ""  # answered: no more retransmissions
        if msg.status in (401, 407):
            header = "www-authenticate" if msg.status == 401 else "proxy-authenticate"
            params = challenge(msg.get(header) or "")
            stale = (params or {}).get("stale", "").lower() == "true"
            if params is not None and (params["nonce"] != self.answered_challenge or stale):
                params["header"] = "Authorization" if msg.status == 401 else "Proxy-Authorization"
                self.auth, self.nc = params, 0
                self.answered_challenge = params["nonce"]
                return self.start(now)
            self.status = f"refused: {msg.status} (check [sip] register_user and password)"
            return self._again(now)
        if msg.status >= 300:
            self.status = f"refused: {msg.status} {msg.reason[:60]}"
            return self._again(now)
        granted = self._granted(msg)
        self.status = "registered"
        self.registered_until = now + granted
        self.retry = RETRY_S
        self.answered_challenge = ""  # the next refresh may be challenged afresh
        self.timers.at(now + max(granted / 2, 1.0), self.start)
        return []

    def _granted(self, msg: Message) -> int:
        """The expiry the registrar granted our contact (§10.2.4), else Expires."""
        for value in msg.all("contact") or []:
            for item in value.split(","):
                try:
                    uri, params = name_addr(item)
                except SipError:
                    continue
                if self.contact in uri:
                    for key, given in params:
                        if key == "expires" and given and given.isdigit():
                            return int(given)
        text = msg.get("expires") or ""
        return int(text) if text.isdigit() else self.expires

    def _again(self, now: float) -> list[Action]:
        self.timers.at(now + self.retry, self.start)
        self.retry = min(2 * self.retry, RETRY_MAX_S)
        return []
