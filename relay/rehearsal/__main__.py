"""python -m relay.rehearsal — the rehearsal crowd (see relay/rehearsal/crowd.py)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
