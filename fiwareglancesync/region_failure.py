"""The one ``ERROR:`` line a failed region gets, alike in ``sync.py``'s runs one region after the
other and in ``--parallel``'s region threads (README "Exit status")."""

from __future__ import annotations

from .glancesync.errors import GlanceSyncError, one_line


def failure_line(region: str, error: BaseException) -> str:
    """``<region>: <message>``: an engine error's message (not prefixed again when it already
    names the region), or for anything else (a bug) ``unexpected <type>: <one line>``."""
    if isinstance(error, GlanceSyncError):
        text = str(error)
    else:
        text = f"unexpected {type(error).__name__}: {one_line(error)}"
    return text if text.startswith(f"{region}:") else f"{region}: {text}"
