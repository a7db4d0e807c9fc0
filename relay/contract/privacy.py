"""Caller numbers are personal data: they become a keyed pseudonym at the first door
they pass, and at most their last two digits are ever shown."""

from __future__ import annotations

import hashlib
import hmac
import secrets


def number_digits(number: str) -> str:
    """The digits of a phone number as written anywhere ("+1 (415) 555-1212" →
    "14155551212"): what a pseudonym is made from and what a screen may end with."""
    return "".join(ch for ch in number if ch.isdigit())


def normalise_number(number: str) -> str:
    """The digits of a phone number ("+1 (415) 555-1212" → "14155551212"); a caller id
    with no digits (e.g. "anonymous") is kept as it is, lower-cased."""
    return number_digits(number) or number.strip().lower()


def pseudonym(number: str, key: bytes) -> str:
    """A stable pseudonym for `number` under `key` ("c-" + 10 hex digits). Without the
    key it cannot be turned back into the number, even by trying every number."""
    return _keyed(normalise_number(number), key)


def call_pseudonym(call: str, key: bytes) -> str:
    """A pseudonym for a call that shows no number, from a name of the call itself
    (e.g. "twilio call CA…"): not `pseudonym`, which keeps only digits, and two call
    ids may share theirs."""
    return _keyed(call, key)


# A pseudonym's ten characters come from sixteen consonants, not hex digits: a caller
# id is refused when it holds more than four digits (it could be a phone number), and
# one of hex would by chance hold many.
_LETTERS = str.maketrans("0123456789abcdef", "bcdfghjkmnpqrstv")


def _keyed(text: str, key: bytes) -> str:
    mac = hmac.new(key, text.encode(), hashlib.sha256)
    return "c-" + mac.hexdigest()[:10].translate(_LETTERS)


def random_pseudonym() -> str:
    """A fresh pseudonym for a caller who has no number (a keypad's session)."""
    return "c-" + secrets.token_hex(5).translate(_LETTERS)


def masked(number: str) -> str | None:
    """What a screen may show of a number: "…12" (None when it has no digits)."""
    digits = number_digits(number)
    return f"…{digits[-2:]}" if digits else None
