"""``python -m db_pool``: the `db-pool` command line (docs/cli.md)."""

from __future__ import annotations

import sys

from ._cli import main

if __name__ == "__main__":
    sys.exit(main())
