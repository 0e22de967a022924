"""``sync.py`` (also installed as ``glancesync``): the command-line shell over the engine.

Parse the arguments, call :class:`GlanceSync`, render, return the exit status:

* ``0`` all the requested work was done;
* ``1`` a region failed (the others were still processed), or a configuration/connection error;
* ``2`` a usage error (bad arguments).

Data (``======`` headers, status CSV, the region list) goes to stdout; log lines
(``LEVEL:message``) go to stderr.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import io
import logging
import os
import sys
from typing import Callable, TextIO

from .glancesync import GlanceSync
from .glancesync.config import parse_overrides
from .glancesync.engine import LOGGER_NAME
from .glancesync.errors import ConfigError, GlanceSyncError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line instead of usage + error
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sync.py", description="A tool to sync images from a master region to other regions")
    parser.add_argument("regions", metavar="region", nargs="*", help="region where the images are uploaded to")
    parser.add_argument("--parallel", action="store_true", help="sync several regions in parallel")
    parser.add_argument("--config", nargs="+", default=[],
                        help="override configuration options. (e.g. main.master_region=Valladolid "
                             "metadata_condition='image.name==\"name1\"')")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="do not upload actually the images")
    mode.add_argument("--show-status", action="store_true", help="do not sync, but show the synchronisation status")
    mode.add_argument("--show-regions", action="store_true", help="do not sync, only show the available regions")
    mode.add_argument("--make-backup", "--make-backups", dest="make_backup", action="store_true",
                      help="do not sync, make a backup of the regions' metadata")
    return parser


def configure_logging(stream: TextIO) -> logging.Logger:
    """The CLI logger: ``LEVEL:message`` lines on ``stream`` (stderr)."""
    logger = logging.getLogger(LOGGER_NAME)
    logger.handlers[:] = []
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s:%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger


_CSV_SPECIAL = frozenset(',"\r\n')


def status_line(*columns: str) -> str:
    """One status CSV line (``\r\n``-terminated), quoted as the csv module would."""
    if any(_CSV_SPECIAL.intersection(column) for column in columns):
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\r\n").writerow(columns)
        return buffer.getvalue()
    return ",".join(columns) + "\r\n"


class Cli:
    """One invocation: the engine, the output stream and the failure flag."""

    def __init__(self, engine: GlanceSync, out: TextIO, log: logging.Logger):
        self.engine = engine
        self.out = out
        self.log = log
        self.failed = False

    def each_region(self, regions: list[str], action: Callable[[str], None]) -> None:
        """Run ``action`` per region; a failing region is reported and the next one processed."""
        for region in regions:
            try:
                action(region)
            except GlanceSyncError as exc:
                self.fail(region, exc)
            except Exception as exc:  # a bug must not hide the other regions' work
                self.fail(region, f"unexpected {type(exc).__name__}: {exc}")

    def fail(self, region: str, cause) -> None:
        self.failed = True
        text = str(cause)
        self.log.error(text if text.startswith(f"{region}:") else f"{region}: {text}")

    def show_status(self, regions: list[str]) -> None:
        def report(region: str) -> None:
            entries = self.engine.region_status(region)
            fullname = self.engine.region(region).fullname
            self.out.write("".join(status_line(entry.status.value, fullname, entry.name) for entry in entries))
            self.out.write("\n")
            self.out.flush()

        self.each_region(regions, report)

    def show_regions(self) -> None:
        print(" ".join(self.engine.show_regions()), file=self.out)

    def make_backup(self, regions: list[str]) -> None:
        directory = "backup_glance_" + datetime.datetime.now().isoformat()
        os.makedirs(directory, exist_ok=True)
        everything = list(dict.fromkeys(regions + [self.engine.master_region]))
        self.each_region(everything, lambda region: self.engine.backup_region(region, directory))

    def sync(self, regions: list[str], dry_run: bool) -> None:
        print(f"======Master is {self.engine.master_region}", file=self.out, flush=True)

        def sync_one(region: str) -> None:
            print(f"======{region}", file=self.out, flush=True)
            self.engine.sync_region(region, dry_run=dry_run)

        self.each_region(regions, sync_one)


def main(argv: list[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None,
         environ=None) -> int:
    out = out or sys.stdout
    log = configure_logging(err or sys.stderr)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        overrides = parse_overrides(args.config)
    except ConfigError as exc:
        parser.error(str(exc))
    try:
        engine = GlanceSync.from_environment(overrides=overrides, environ=environ, logger=log)
        cli = Cli(engine, out, log)
        if args.show_regions:
            cli.show_regions()
            return EXIT_OK
        regions = engine.expand_regions(args.regions)
        if args.make_backup:
            cli.make_backup(regions)
            return EXIT_FAILED if cli.failed else EXIT_OK
        engine.master_images()  # the master catalogue is needed by every other mode: fail once, early
        if args.show_status:
            cli.show_status(regions)
        else:
            # --parallel is accepted; regions are synchronised one after another for now
            cli.sync(regions, dry_run=args.dry_run)
    except GlanceSyncError as exc:
        log.error(str(exc))
        return EXIT_FAILED
    except KeyboardInterrupt:
        log.error("interrupted")
        return EXIT_FAILED
    return EXIT_FAILED if cli.failed else EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
