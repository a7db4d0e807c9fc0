"""Telephony ingress: each gateway turns its provider's wire format into the
installation's `join` / `digit` / `leave` events (relay/contract/events.py), with the
caller's number turned into a keyed pseudonym (relay.contract.privacy) at the door."""
