"""The one definition of what travels between dialjam's pieces: the events on the
installation's channels, who may send them, and what of a phone number may travel.

Pure: nothing here imports the rest of the project or any I/O library, so the relay,
its gateways, the billboard, the rehearsal crowd and the tests all read the same
contract (README, "The relay protocol").

- ``events``: every event's shape (`Join`, `Digit`, `Leave`, `Command`, `Assign`,
  `Left`, `State`), the key set, and total readers for each channel.
- ``channels``: the channel grammar, an installation's channels and who publishes there.
- ``privacy``: a number's digits, pseudonyms, what a screen may show.
- ``subscriber``: a sans-I/O v2 subscriber (since, epoch, gaps, coalesced arrays).
- ``web``: the same contract for the web pages (web/js/contract.js, generated).
"""
