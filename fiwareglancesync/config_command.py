"""``glancesync-config``: helpers around glancesync.conf.

``glancesync-config sample`` prints an annotated glancesync.conf with every option the loader
knows and its default, generated from the loader's own option tables (so it cannot drift from
what the loader accepts).  Exit status 0, or 2 for a usage error.
"""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from .glancesync.config import sample


def main(argv: list[str] | None = None, *, out: TextIO | None = None) -> int:
    parser = argparse.ArgumentParser(prog="glancesync-config", description="Helpers around glancesync.conf")
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    commands.add_parser("sample", help="print an annotated glancesync.conf with every option and its default")
    parser.parse_args(argv)
    (out or sys.stdout).write(sample())
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
