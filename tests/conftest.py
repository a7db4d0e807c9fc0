"""Fixtures shared by every test folder: real services (JACK, FluidSynth) that start
for the test, and fail under CI=true when they cannot (locally they skip, saying how
to install them)."""

pytest_plugins = ("tests.services",)
