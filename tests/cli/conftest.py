"""In-process CLI runs reconfigure the CLI logger: put it back after every test."""

from tests.cli.inprocess import restore_cli_loggers  # noqa: F401  (an autouse fixture)
