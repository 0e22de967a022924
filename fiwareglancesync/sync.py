"""``sync.py`` (also installed as ``glancesync``): the command-line shell over the engine.

Parse the arguments, call :class:`GlanceSync`, render, return the exit status:

* ``0`` all the requested work was done;
* ``1`` a region failed (the others were still processed), or a configuration/connection error;
* ``2`` a usage error (bad arguments);
* ``130`` / ``143`` interrupted by SIGINT / SIGTERM (one ``ERROR:`` line names the region).

Data (``======`` headers, status CSV, the region list) goes to stdout; log lines
(``LEVEL:message``) go to stderr.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import gc
import io
import json
import logging
import os
import sys
from typing import Callable, TextIO

from .glancesync import GlanceSync
from .glancesync.config import parse_overrides
from .glancesync.engine import LOG_ROOT
from .glancesync.errors import ConfigError, GlanceSyncError
from .interrupts import Interrupted, interrupts_raise
from .metrics_file import RunMetrics, write_metrics_file
from .parallel import log_directory, run_parallel
from .progressbar import ProgressBars
from .region_failure import failure_line

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class _Exit(Exception):
    """argparse asked to end the program (``--help``, a usage error): main returns ``status``."""

    def __init__(self, status: int):
        super().__init__(status)
        self.status = status


class _Parser(argparse.ArgumentParser):
    """argparse writing to the streams main was given and returning instead of exiting."""

    def __init__(self, *args, out: TextIO | None = None, err: TextIO | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.out = out
        self.err = err

    def print_help(self, file=None) -> None:
        super().print_help(file or self.out)

    def print_usage(self, file=None) -> None:
        super().print_usage(file or self.out)

    def exit(self, status: int = 0, message: str | None = None):
        if message:
            (self.err or sys.stderr).write(message)
        raise _Exit(status)

    def error(self, message: str):  # one line instead of usage + error
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser(out: TextIO | None = None, err: TextIO | None = None) -> argparse.ArgumentParser:
    parser = _Parser(prog="sync.py", description="A tool to sync images from a master region to other regions",
                     out=out, err=err)
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
    parser.add_argument("--format", choices=("text", "json"), default="text",
                        help="output of --show-status and --show-regions (default: text, the original CSV)")
    parser.add_argument("--quiet", "-q", action="store_true",
                        help="only warnings and errors on stderr, no progress bars")
    parser.add_argument("--metrics-file", metavar="PATH",
                        help="write Prometheus metrics of the run to PATH (node_exporter's textfile collector)")
    return parser


def configure_logging(stream: TextIO, level: int = logging.INFO) -> logging.Logger:
    """The parent of every glancesync logger: ``LEVEL:message`` lines on ``stream`` (stderr).
    The CLI logs its own lines on it too."""
    logger = logging.getLogger(LOG_ROOT)
    logger.handlers[:] = []
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s:%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level)
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

    def __init__(self, engine: GlanceSync, out: TextIO, log: logging.Logger, observer=None,
                 metrics: RunMetrics | None = None):
        self.engine = engine
        self.out = out
        self.log = log
        self.observer = observer
        self.metrics = metrics
        self.failed = False
        self.current: str | None = None  # the region being worked on, for an interrupt's message

    def each_region(self, regions: list[str], action: Callable[[str], None]) -> None:
        """Run ``action`` per region; a failing region is reported and the next one processed.

        This is the CLI's one catch-all: an engine error is reported with its message, anything
        else (a bug) with its type, and neither hides the other regions' work.
        """
        for region in regions:
            self.current = region
            try:
                action(region)
            except Exception as exc:
                self.fail(region, exc)
        self.current = None

    def fail(self, region: str, error: Exception) -> None:
        self.failed = True
        self.log.error(failure_line(region, error))

    def show_status(self, regions: list[str]) -> None:
        def report(region: str) -> None:
            entries = self.engine.region_status(region)
            fullname = self.engine.region(region).fullname
            self._record_statuses(fullname, entries)
            self.out.write("".join(status_line(entry.status.value, fullname, entry.name) for entry in entries))
            self.out.write("\n")
            self.out.flush()

        self.each_region(regions, report)

    def show_status_json(self, regions: list[str]) -> None:
        """The JSON form of --show-status (schema in README.rst, "Machine-readable output")."""
        document = {"master_region": self.engine.master_region, "regions": []}

        def report(region: str) -> None:
            fullname = self.engine.region(region).fullname
            block = {"region": fullname, "error": None, "images": []}
            document["regions"].append(block)
            try:
                entries = self.engine.region_status(region)
            except GlanceSyncError as exc:
                block["error"] = str(exc)
                raise
            self._record_statuses(fullname, entries)
            block["images"] = [entry.to_dict() for entry in entries]

        self.each_region(regions, report)
        json.dump(document, self.out, indent=2)
        self.out.write("\n")

    def show_regions(self, as_json: bool = False) -> None:
        regions = self.engine.show_regions()
        if as_json:
            json.dump({"regions": regions}, self.out, indent=2)
            self.out.write("\n")
        else:
            print(" ".join(regions), file=self.out)

    def make_backup(self, regions: list[str]) -> None:
        directory = "backup_glance_" + datetime.datetime.now().isoformat()
        os.makedirs(directory, exist_ok=True)
        everything = list(dict.fromkeys(regions + [self.engine.master_region]))
        self.each_region(everything, lambda region: self.engine.backup_region(region, directory))

    def sync(self, regions: list[str], dry_run: bool) -> None:
        print(f"======Master is {self.engine.master_region}", file=self.out, flush=True)

        def sync_one(region: str) -> None:
            print(f"======{region}", file=self.out, flush=True)
            report = self.engine.sync_region(region, dry_run=dry_run, observer=self.observer)
            fullname = self.engine.region(region).fullname
            self.record_transfers(fullname, report.bytes_by_method)
            if not dry_run:
                self.record_success(fullname)

        self.each_region(regions, sync_one)

    def record_transfers(self, fullname: str, bytes_by_method: dict[str, int]) -> None:
        if self.metrics is not None:
            for method, nbytes in bytes_by_method.items():
                self.metrics.record_transfer(fullname, method, nbytes)

    def record_success(self, fullname: str) -> None:
        if self.metrics is not None:
            self.metrics.record_success(fullname)

    def record_final_statuses(self, regions: list[str]) -> None:
        """For the metrics file: each region's statuses once the run is done (listed again, the
        listings concurrently; a region that cannot be listed is left out)."""
        if self.metrics is None:
            return
        self.engine.prefetch(regions, self.engine.config.max_children)
        for region in regions:
            try:
                self._record_statuses(self.engine.region(region).fullname, self.engine.classify(region).statuses)
            except GlanceSyncError:
                pass  # its failure was reported when it was synchronised

    def _record_statuses(self, fullname: str, entries) -> None:
        if self.metrics is not None:
            self.metrics.record_statuses(fullname, entries)


def main(argv: list[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None,
         environ=None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    parser = build_parser(out, err)
    try:
        args = parser.parse_args(argv)
    except _Exit as exit_:  # --help, or a usage error (already written to err)
        return exit_.status
    log = configure_logging(err, logging.WARNING if args.quiet else logging.INFO)
    metrics = RunMetrics() if args.metrics_file else None
    try:
        overrides = parse_overrides(args.config)
    except ConfigError as exc:  # a bad --config is a usage error
        try:
            parser.error(str(exc))
        except _Exit as exit_:
            status = exit_.status
    else:
        try:
            with interrupts_raise():
                status = _run(args, out, err, log, environ, overrides, metrics)
        except Interrupted as exc:
            log.error(f"interrupted by {exc.name}")
            status = exc.exit_status
    if not _write_metrics(args.metrics_file, metrics, status == EXIT_OK, log):
        status = EXIT_FAILED
    return status


def _write_metrics(path: str | None, metrics: RunMetrics | None, success: bool, log: logging.Logger) -> bool:
    if path is None or metrics is None:
        return True
    try:
        write_metrics_file(path, metrics, success)
    except GlanceSyncError as exc:
        log.error(str(exc))
        return False
    return True


def _run(args, out: TextIO, err: TextIO, log: logging.Logger, environ, overrides,
         metrics: RunMetrics | None) -> int:
    cli = None
    try:
        engine = GlanceSync.from_environment(overrides=overrides, environ=environ)
        show_progress = not args.quiet and not args.parallel and err.isatty()
        cli = Cli(engine, out, log, observer=ProgressBars(err) if show_progress else None, metrics=metrics)
        if args.show_regions:
            cli.show_regions(as_json=args.format == "json")
            return EXIT_OK
        regions = engine.expand_regions(args.regions)
        if args.make_backup:
            cli.make_backup(regions)
            return EXIT_FAILED if cli.failed else EXIT_OK
        engine.master_images()  # the master catalogue is needed by every other mode: fail once, early
        if not (args.show_status or args.dry_run):
            engine.connect_coordination()  # an unreachable lock backend fails the run once, before any copy
        if args.show_status or (args.dry_run and not args.parallel):
            # Read-only modes list ahead, concurrently.  A sync does not: it must list a region
            # only once it holds the region's lock, or another run's copies would go unseen.
            engine.prefetch(regions, engine.config.max_children)
        if args.show_status:
            if args.format == "json":
                cli.show_status_json(regions)
            else:
                cli.show_status(regions)
        elif args.parallel:
            print(f"======Master is {engine.master_region}", file=out, flush=True)
            directory = log_directory()
            outcome = run_parallel(engine, regions, max_children=engine.config.max_children, dry_run=args.dry_run,
                                   out=out, directory=directory)
            cli.failed = not outcome.ok
            for fullname, bytes_by_method in outcome.transferred.items():
                cli.record_transfers(fullname, bytes_by_method)
            for fullname in outcome.succeeded if not args.dry_run else ():
                cli.record_success(fullname)
            cli.record_final_statuses(regions)
        else:
            cli.sync(regions, dry_run=args.dry_run)
            cli.record_final_statuses(regions)
    except GlanceSyncError as exc:
        log.error(str(exc))
        return EXIT_FAILED
    except Interrupted as exc:
        where = f"{cli.current}: " if cli is not None and cli.current else ""
        log.error(f"{where}interrupted by {exc.name}")
        return exc.exit_status
    return EXIT_FAILED if cli.failed else EXIT_OK


def console_main() -> int:
    """The ``sync.py`` command: :func:`main`, then a quicker exit.  What the run leaves is freed
    by the interpreter's exit; frozen (``gc.freeze``), it is not traversed again by the exit's
    garbage collections: measured on a 2-core VM, the exit after sync.py's imports took 97 ms
    as it was and 12 ms frozen.  Finalisation still runs (atexit, logging.shutdown flushing the
    log files).  Not in :func:`main`, which tests call in their own process."""
    status = main()
    gc.freeze()
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(console_main())
