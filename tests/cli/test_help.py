"""``sync.py --help`` (README "Credentials and targets", "Metrics for cron runs"): the original's
options, order and wording, with its typos
fixed ("don not", "do no"), Python 3's ``options:`` heading, the ``=="name1"`` example that works,
and the added options at the end."""

from __future__ import annotations

from tests.cli.inprocess import clean_environ, run_sync

EXPECTED = """\
usage: sync.py [-h] [--parallel] [--config CONFIG [CONFIG ...]]
               [--dry-run | --show-status | --show-regions | --make-backup]
               [--format {text,json}] [--quiet] [--metrics-file PATH]
               [region ...]

A tool to sync images from a master region to other regions

positional arguments:
  region                region where the images are uploaded to

options:
  -h, --help            show this help message and exit
  --parallel            sync several regions in parallel
  --config CONFIG [CONFIG ...]
                        override configuration options. (e.g.
                        main.master_region=Valladolid
                        metadata_condition='image.name=="name1"')
  --dry-run             do not upload actually the images
  --show-status         do not sync, but show the synchronisation status
  --show-regions        do not sync, only show the available regions
  --make-backup, --make-backups
                        do not sync, make a backup of the regions' metadata
  --format {text,json}  output of --show-status and --show-regions (default:
                        text, the original CSV)
  --quiet, -q           only warnings and errors on stderr, no progress bars
  --metrics-file PATH   write Prometheus metrics of the run to PATH
                        (node_exporter's textfile collector)
"""


def test_help_text(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")  # argparse wraps to the terminal width
    for flag in ("--help", "-h"):
        result = run_sync([flag], clean_environ())
        assert result.returncode == 0
        assert result.stdout == EXPECTED
        assert result.stderr == ""
