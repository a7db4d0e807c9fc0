"""Rehearsal tools, never imported by the server: the crowd (callers through every
ingress path at human rates, and the check that every press arrived), the fake
Asterisk it plays against, and the DTMF corpus the detector is measured on.

    python -m relay.rehearsal --help
"""
