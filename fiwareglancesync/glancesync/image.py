"""The image value object and the backup CSV format.

An :class:`Image` is what the engine knows of one Glance image in one region.  It is frozen:
the engine derives new values with :func:`dataclasses.replace` instead of mutating.

Backup CSV (the original's format, kept for compatibility): one row per image with the columns
``region, name, id, status, size, checksum, owner, is_public, properties`` where ``is_public``
is ``True``/``False`` and ``properties`` is a Python dict literal (``{'type': 'base', 'nid': 1}``,
``u''`` prefixes accepted when reading).  Rows are written with ``\\r\\n`` line ends; reading
accepts ``\\r\\n`` or ``\\n`` and skips blank lines.
"""

from __future__ import annotations

import ast
import csv
import io
from dataclasses import MISSING, dataclass, field, fields, replace
from typing import Any, Iterable, Iterator, Mapping

from .errors import BackupFormatError

KERNEL_ID = "kernel_id"
RAMDISK_ID = "ramdisk_id"
AMI_PROPERTIES = (KERNEL_ID, RAMDISK_ID)
# Set on every copy glancesync creates until it is verified (README "Leftovers of interrupted
# runs"); never compared.
IN_PROGRESS = "glancesync_in_progress"
# A copy's lineage (README "Regions that differ"): what it is a copy of, set when glancesync
# creates it, rewritten when it replaces it; never read from a master image, never compared.
SOURCE_ID = "glancesync_source_id"
SOURCE_CHECKSUM = "glancesync_source_checksum"
SOURCE_HASH = "glancesync_source_hash"
LINEAGE = (SOURCE_ID, SOURCE_CHECKSUM, SOURCE_HASH)
# Properties that belong to glancesync's bookkeeping, not to the image: never synchronised.
BOOKKEEPING = (IN_PROGRESS, *LINEAGE)



def lineage_of(master: "Image") -> dict[str, str]:
    """The lineage a new copy of ``master`` carries: its id, its MD5 and ``<algo>:<value>`` of
    its multihash (empty when it has none)."""
    hashed = f"{master.os_hash_algo}:{master.os_hash_value}" if master.os_hash_algo and master.os_hash_value else ""
    return {SOURCE_ID: master.id, SOURCE_CHECKSUM: master.checksum or "", SOURCE_HASH: hashed}


CSV_COLUMNS = ("region", "name", "id", "status", "size", "checksum", "owner", "is_public", "properties")


@dataclass(frozen=True, eq=True)
class Image:
    """One Glance image as seen in one region.

    ``region`` is the full region name (``Burgos``, ``other:Madrid``).  ``is_public`` maps to
    Glance v2 ``visibility == "public"``.  ``user_properties`` holds the custom (non-schema)
    properties.  The remaining fields are the ones an upload copies from the master image and
    the hashes a transfer is verified against; the mock leaves them at their defaults.
    """

    name: str
    id: str
    region: str
    owner: str | None = None
    is_public: bool = True
    checksum: str | None = None
    size: int = 0
    status: str | None = None
    user_properties: Mapping[str, Any] = field(default_factory=dict)
    disk_format: str | None = None
    container_format: str | None = None
    min_disk: int = 0
    min_ram: int = 0
    protected: bool = False
    os_hash_algo: str | None = None
    os_hash_value: str | None = None
    created_at: str | None = None  # ISO 8601, as Glance reports it (not in the backup CSV)
    virtual_size: int | None = None  # the disk's size as Glance's format inspection found it (not in the CSV)
    stores: tuple[str, ...] = ()  # the stores of a multi-store Glance holding its data (not in the CSV)

    @property
    def size_mb(self) -> float:
        """Size in MiB as the log lines print it."""
        return self.size / 1024 / 1024

    @property
    def lineage(self) -> dict[str, str]:
        """The lineage properties this image carries (empty for images glancesync did not
        create, e.g. made by hand or by the original)."""
        return {key: str(self.user_properties[key]) for key in LINEAGE if key in self.user_properties}

    @property
    def effective_checksum(self) -> str | None:
        """The checksum every status rule uses: for a copy with lineage the master checksum it
        was made from (a region that converts imports stores other bytes with other hashes),
        else the image's own."""
        return self.user_properties.get(SOURCE_CHECKSUM) or self.checksum

    def to_row(self) -> list[Any]:
        """The backup CSV row of this image (see the module docstring)."""
        return [
            self.region,
            self.name,
            self.id,
            self.status,
            self.size,
            self.checksum,
            self.owner,
            self.is_public,
            repr(dict(self.user_properties)),
        ]

    def __str__(self) -> str:
        return (
            f"Region: {self.region} Name: {self.name} Id: {self.id} Status: {self.status} "
            f"Size: {self.size} Checksum: {self.checksum} Owner: {self.owner} "
            f"Public: {self.is_public} Properties: {dict(self.user_properties)}"
        )


# Parsed property dicts, keyed by their literal text.  Property columns repeat a lot (every image
# of a kind carries the same dict), and literal_eval dominates the cost of reading a large store.
_PROPERTIES_CACHE: dict[str, dict[str, Any]] = {}


def parse_properties(text: str) -> dict[str, Any]:
    """Parse the properties column: a Python dict literal, evaluated without running code.

    Raises ValueError when the text is not a dict literal.
    """
    text = text.strip()
    if not text or text == "{}":
        return {}
    cached = _PROPERTIES_CACHE.get(text)
    if cached is None:
        value = ast.literal_eval(text)  # accepts u'' prefixes; never executes code
        if not isinstance(value, dict):
            raise ValueError(f"expected a dict literal, got {type(value).__name__}")
        if len(_PROPERTIES_CACHE) < 65536:
            _PROPERTIES_CACHE[text] = value
        cached = value
    return dict(cached)


def image_from_row(row: list[str]) -> Image:
    """Build an Image from one backup CSV row; raises ValueError naming the bad column."""
    if len(row) != len(CSV_COLUMNS):
        raise ValueError(f"expected {len(CSV_COLUMNS)} columns ({', '.join(CSV_COLUMNS)}), got {len(row)}")
    region, name, image_id, status, size, checksum, owner, is_public, properties = row
    try:
        size_value = int(size) if size.strip() else 0
    except ValueError:
        raise ValueError(f"size {size!r} is not an integer") from None
    try:
        props = parse_properties(properties)
    except (ValueError, SyntaxError) as exc:
        raise ValueError(f"properties {properties!r} are not a dict literal ({exc})") from None
    return _build_image(name, image_id, region, owner, is_public.strip() == "True", checksum, size_value,
                        status, props)


_FIELD_DEFAULTS = {f.name: f.default for f in fields(Image) if f.default is not MISSING}


def _build_image(name, image_id, region, owner, is_public, checksum, size, status, props) -> Image:
    """Image(...) without the frozen dataclass's per-field ``object.__setattr__`` calls.

    Reading a large store builds hundreds of thousands of images; this is several times faster
    and yields an object equal to the one the constructor builds.
    """
    image = object.__new__(Image)
    image.__dict__.update(_FIELD_DEFAULTS, name=name, id=image_id, region=region, owner=owner,
                          is_public=is_public, checksum=checksum, size=size, status=status,
                          user_properties=props)
    return image


def read_backup(stream: Iterable[str], source: str) -> Iterator[Image]:
    """Yield the images of a backup CSV stream; ``source`` names it in error messages.

    Raises BackupFormatError naming the source and the line of the first malformed row.
    """
    reader = csv.reader(stream)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # e.g. a field over csv.field_size_limit(), a NUL byte
            raise BackupFormatError(f"{source}, line {reader.line_num}: not a valid CSV row ({exc})") from None
        if not row or (len(row) == 1 and not row[0].strip()):
            continue  # blank line
        try:
            yield image_from_row(row)
        except ValueError as exc:
            raise BackupFormatError(f"{source}, line {reader.line_num}: {exc}") from None


def read_backup_file(path: str) -> list[Image]:
    """All images of one backup CSV file (see :func:`read_backup`)."""
    try:
        with open(path, newline="", encoding="utf-8") as stream:
            return list(read_backup(stream, path))
    except UnicodeDecodeError as exc:
        raise BackupFormatError(f"{path}: not UTF-8 text ({exc.reason})") from None


def write_backup(images: Iterable[Image], stream: io.TextIOBase) -> None:
    """Write images as backup CSV rows (``\\r\\n`` line ends, the original's format)."""
    writer = csv.writer(stream, lineterminator="\r\n")
    for image in images:
        writer.writerow(image.to_row())
