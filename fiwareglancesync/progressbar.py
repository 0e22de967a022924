"""A progress bar per upload on a terminal (tqdm), for the CLI.

tqdm is imported by the first bar, not with this module: sync.py imports this module at every
start, and most runs (stderr not a terminal, ``--quiet``, ``--parallel``) draw no bar.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from tqdm import tqdm


def terminal_size(stream: TextIO) -> tuple[int, int]:
    """(columns, lines) of the terminal behind ``stream``; a new pseudo-terminal may report 0x0,
    which tqdm would take literally and draw nothing, so fall back to 100x24."""
    try:
        size = os.get_terminal_size(stream.fileno())
        return size.columns or 100, size.lines or 24
    except (OSError, ValueError, AttributeError):
        return 100, 24


class ProgressBars:
    """A :class:`TransferObserver` drawing one bar per copy (streamed: the bytes this client
    sends; imported: the bytes the region's Glance copied): image, region, bytes, rate, ETA.  A
    region's concurrent copies (``max_copies``) get a bar each, stacked by tqdm."""

    def __init__(self, stream: TextIO):
        self.stream = stream

    def started(self, region: str, image: str, total: int) -> "_Bar":
        from tqdm import tqdm

        columns, lines = terminal_size(self.stream)
        return _Bar(tqdm(total=total or None, unit="B", unit_scale=True, unit_divisor=1024,
                         desc=f"{region}: {image}", file=self.stream, leave=True,
                         ncols=columns, nrows=lines, miniters=1, mininterval=0.2))


class _Bar:
    """One copy's bar (a :class:`~.glancesync.progress.Transfer`)."""

    def __init__(self, bar: "tqdm"):
        self.bar = bar

    def advanced(self, nbytes: int) -> None:
        self.bar.update(nbytes)

    def finished(self, ok: bool) -> None:
        if not ok:
            self.bar.set_postfix_str("failed")
        self.bar.close()
