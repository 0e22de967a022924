"""A progress bar per upload on a terminal (tqdm), for the CLI."""

from __future__ import annotations

from typing import TextIO

from tqdm import tqdm


class ProgressBars:
    """A :class:`TransferObserver` drawing one bar per upload: image, region, bytes, rate, ETA."""

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.bar: tqdm | None = None

    def started(self, region: str, image: str, total: int) -> None:
        self.bar = tqdm(total=total or None, unit="B", unit_scale=True, unit_divisor=1024,
                        desc=f"{region}: {image}", file=self.stream, leave=True, dynamic_ncols=True,
                        miniters=1, mininterval=0.2)

    def advanced(self, nbytes: int) -> None:
        if self.bar is not None:
            self.bar.update(nbytes)

    def finished(self, ok: bool) -> None:
        if self.bar is not None:
            if not ok:
                self.bar.set_postfix_str("failed")
            self.bar.close()
            self.bar = None
