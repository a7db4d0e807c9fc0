"""The one definition of what travels between dialjam's pieces: the events on the
installation's channels, who may send them, and what of a phone number may travel.

Pure: nothing here imports the rest of the project or any I/O library, so the relay,
its gateways, the billboard, the rehearsal crowd and the tests all read the same
contract (DESIGN.md, "Channels and event shapes").
"""
