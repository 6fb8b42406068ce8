"""``python -m novacron.simulate``: the simulator without the rest of the CLI."""

from __future__ import annotations

import sys

from novacron.simulate.cli import main

if __name__ == "__main__":
    sys.exit(main())
