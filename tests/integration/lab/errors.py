"""The one exception the lab raises, and the log-tail helper its messages use."""

from __future__ import annotations

from pathlib import Path


class LabError(Exception):
    """The lab could not be built, started, checked or stopped.  The message says which step
    failed and carries the relevant log tail, so a CI failure is readable without the files."""


class PortTaken(LabError):
    """A server could not bind its port: another process took it after we picked it."""


def tail_text(text: str, lines: int) -> str:
    """The last ``lines`` lines of ``text``, indented for embedding in an error message."""
    kept = text.rstrip("\n").splitlines()[-lines:]
    return "\n".join("    " + line for line in kept) or "    (empty)"


def tail_file(path: Path, lines: int = 30) -> str:
    """``---- <path>`` followed by its last ``lines`` lines (or a note that it does not exist)."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError as exc:
        return f"---- {path}: {exc.strerror}"
    return f"---- {path} (last {lines} lines)\n{tail_text(text, lines)}"
