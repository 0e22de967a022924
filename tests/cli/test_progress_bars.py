"""The CLI's progress bars (``progressbar.ProgressBars``, README "How copies are made"): a bar per
copy, fed by the bytes the region's Glance copied for an import, marked ``failed`` when the copy
fails, one bar each for a region's concurrent copies."""

from __future__ import annotations

import io

from fiwareglancesync.glancesync.config import load_string
from fiwareglancesync.glancesync.engine import GlanceSync
from fiwareglancesync.glancesync.errors import ImportFailed
from fiwareglancesync.glancesync.facades.base import GLANCE_DOWNLOAD, Uploaded
from fiwareglancesync.glancesync.facades.mock import MemoryStore, MockFacade
from fiwareglancesync.progressbar import ProgressBars
from tests.conf_factory import glancesync_conf
from tests.unit.test_import_apply import ImportingFacade, image

SIZE = 4 * 1024 * 1024


class CopyingFacade(ImportingFacade):
    """Imports whose Glance reports the bytes copied in four steps; ``broken`` fails halfway."""

    broken: set = set()

    def finish_import(self, region, image_id, copy, deadline=None, progress=None):
        for step in (1, 2, 3, 4):
            if copy.name in self.broken and step == 3:
                self.inner.delete_image(region, image_id)
                raise ImportFailed(f"{region.fullname}: Import of {copy.name} Failed. Cause: stalled",
                                   region.fullname, "stalled")
            progress(SIZE * step // 4)
        return Uploaded(image_id, 0, GLANCE_DOWNLOAD)


def run(names, broken=(), **options):
    store = MemoryStore()
    store.regions_["Master"] = [image(name, f"m{n}", SIZE, f"c{n}", "Master", type="b")
                                for n, name in enumerate(names)]
    store.regions_["Burgos"] = []
    CopyingFacade.broken = set(broken)
    options.setdefault("transfer_method", "glance-download")
    config = load_string(glancesync_conf(**options), environ={})
    engine = GlanceSync(config, lambda target: CopyingFacade(MockFacade(target, store), []))
    screen = io.StringIO()
    try:
        engine.sync_region("Burgos", observer=ProgressBars(screen))
    except ImportFailed as failed:
        return screen.getvalue(), failed
    return screen.getvalue(), None


def final_lines(drawn: str) -> list[str]:
    """What each bar shows last (tqdm redraws a bar in place after a carriage return)."""
    return [line.split("\r")[-1].strip() for line in drawn.split("\n") if line.strip()]


def test_an_import_draws_a_bar_of_the_bytes_its_glance_copied():
    drawn, failed = run(["disk"], max_copies=1)
    assert failed is None
    [last] = final_lines(drawn)  # the client sent nothing: the bar counts what Glance copied
    assert last.startswith("Burgos: disk: 100%") and "4.00M/4.00M" in last


def test_a_failed_import_leaves_its_bar_where_it_stopped_marked_failed():
    drawn, failed = run(["disk"], broken={"disk"}, max_copies=1, transfer_method="glance-download")
    assert failed is not None
    [last] = final_lines(drawn)
    assert last.startswith("Burgos: disk:  50%") and "2.00M/4.00M" in last and last.endswith("failed]")


def test_concurrent_copies_get_a_bar_each():
    drawn, failed = run(["a", "b", "c"], max_copies=3)
    assert failed is None
    finals = final_lines(drawn)
    for name in ("a", "b", "c"):
        assert any(line.startswith(f"Burgos: {name}: 100%") for line in finals), finals
