"""glancesync.conf, ``--config`` overrides and the OS_* environment -> a frozen :class:`Config`.

Where the file comes from (first match wins): the ``GLANCESYNC_CONFIG`` environment variable
(the file must exist), the path given by the caller, ``/etc/glancesync.conf``,
``/etc/fiware.d/glancesync.conf``; with none of them the configuration comes from the
environment alone.

Sections: ``[main]`` holds global options, ``[DEFAULT]`` options every section inherits, and
every other section is a *target* (``[master]`` is the target of the master region).  Every
target gets every default.  Missing credential fields of ``master`` are filled one by one from
``OS_USERNAME``, ``OS_PASSWORD``, ``OS_AUTH_URL``, ``OS_TENANT_NAME``/``OS_PROJECT_NAME``,
``OS_USER_DOMAIN_NAME`` and ``OS_PROJECT_DOMAIN_NAME``; ``master_region`` from
``OS_REGION_NAME``.

The options are the tables :data:`MAIN_OPTIONS` and :data:`TARGET_OPTIONS`: each option's
default, parser and bounds, from which :class:`Config` and every :class:`Target` are built.
The file itself is read by :mod:`.config_file`, credentials are resolved by :mod:`.credentials`.
Every problem raises :class:`ConfigError` naming the file, the section and the option.
"""

from __future__ import annotations

import configparser
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from . import credentials, keystone
from .clouds import CloudCredential
from .condition import Condition, ConditionError
from .config_file import MAIN_SECTION, Reader, bounded_number, find_config_file, read_file, read_string
from .config_file import parse_overrides  # noqa: F401  (public here: the CLI imports it from config)
from .errors import ConfigError
from .region import MASTER_TARGET

DEFAULT_IMAGES_DIR = "/var/lib/glance/images"
DEFAULT_DOMAIN = keystone.DEFAULT_DOMAIN
TRANSFER_METHODS = ("auto", "stream", "glance-download")
# Glance's disk formats (its [image_format] disk_formats default)
ALL_STORES = "all"
DISK_FORMATS = ("ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop")
MISSING_MASTER_REGION = "A master region must be set in the configuration or OS_REGION_NAME must be defined"

# (stripped text, "<file>: [<section>] <option>", section) -> the option's value; raises ConfigError
Parser = Callable[[str, str, str], Any]


def _text(text: str, where: str, section: str) -> str:
    return text


def _optional_text(text: str, where: str, section: str) -> str | None:
    return text or None


def _list(text: str, where: str, section: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",")) if text else ()


def _set(text: str, where: str, section: str) -> frozenset[str]:
    return frozenset(_list(text, where, section))


def _boolean(text: str, where: str, section: str) -> bool | None:
    if not text:
        return None
    try:
        return configparser.ConfigParser.BOOLEAN_STATES[text.lower()]
    except KeyError:
        raise ConfigError(f"{where}: {text!r} is not a boolean (use true/false, yes/no, on/off or 1/0)") from None


def integer(minimum: int) -> Parser:
    """The parser of a whole number that must be at least ``minimum``."""

    def parse(text: str, where: str, section: str) -> int:
        return bounded_number(text, int, minimum, lambda reason: ConfigError(f"{where}: {reason}"),
                              "{text!r} is not an integer", "must be at least {minimum}, got {number}")

    return parse


def _flag(text: str, where: str, section: str) -> bool:
    """A boolean option whose default is written in the table (never None)."""
    return bool(_boolean(text, where, section))


def _disk_format(text: str, where: str, section: str) -> str | None:
    if not text:
        return None
    disk_format = text.lower()
    if disk_format not in DISK_FORMATS:
        raise ConfigError(f"{where}: {text!r} is not a Glance disk format (one of {', '.join(DISK_FORMATS)})")
    return disk_format


def _stores(text: str, where: str, section: str) -> tuple[str, ...]:
    """``all`` (every store of the region) or store names; checked against each region's stores
    when it is synchronised."""
    names = _list(text, where, section)
    if ALL_STORES in (name.lower() for name in names):
        if len(names) > 1:
            raise ConfigError(f"{where}: {ALL_STORES} stands alone, not in a list of stores")
        return (ALL_STORES,)
    if any(not name for name in names):
        raise ConfigError(f"{where}: an empty store name in {text!r}")
    return names


def _condition(text: str, where: str, section: str) -> Condition | None:
    if not text:
        return None
    try:
        return Condition(text)
    except ConditionError as exc:
        raise ConfigError(f"{where} of target {section}: {exc}") from None


def _transfer_method(text: str, where: str, section: str) -> str:
    """README "How copies are made": glance-download only for the master target, whose regions'
    Glances share the master's Keystone and catalog."""
    method = text.lower()
    if method not in TRANSFER_METHODS:
        raise ConfigError(f"{where}: {method!r} is not one of {', '.join(TRANSFER_METHODS)}")
    if method == "glance-download" and section != MASTER_TARGET:
        raise ConfigError(f"{where}: glance-download works only for regions of the master target (a region's "
                          f"Glance pulls with the caller's token from its own catalog); target {section} is behind "
                          "another Keystone: use stream or auto")
    return method


@dataclass(frozen=True)
class Option:
    """One option the loader knows: its name, its default as it would be written in the file
    (empty: none), its parser (with its bounds) and what it means.  The loader takes defaults
    and types from these tables and the sample configuration (:func:`sample`) is printed from
    them, so none of them can drift.  ``parse`` is None for the options resolved together
    (``master_region``; the credential ones, by :mod:`.credentials`); ``inherited`` options
    are visible from every section, as the original's DEFAULT section was."""

    name: str
    default: str
    parse: Parser | None
    meaning: str
    inherited: bool = False

    def value(self, reader: Reader, section: str) -> Any:
        """The option's value in ``section``: the parsed text, or the parsed default when the
        text is absent or empty."""
        return self.parse(reader.text(section, self.name) or self.default, reader.where(section, self.name), section)


MAIN_OPTIONS: Mapping[str, Option] = {o.name: o for o in (
    Option("master_region", "", None, "region the images are copied from (required; else $OS_REGION_NAME)"),
    Option("preferable_order", "", _list,
           "regions synchronised first, in this order (T:Region for other targets)"),
    Option("max_children", "1", integer(minimum=1), "regions synchronised at once with --parallel"),
    Option("images_dir", DEFAULT_IMAGES_DIR, _text,
           "directory searched for <master image id> files before the data is streamed from the master region"),
    Option("lock_dir", "", _text, "directory of the per-region locks that keep two syncs of a region apart "
                                  "(empty: $XDG_RUNTIME_DIR/glancesync, else /tmp/glancesync-<uid>)"),
    Option("coordination_url", "", _text, "tooz URL of the backend holding the per-region locks, shared by every "
           "host that synchronises these regions (empty: file://<lock_dir>, this host only)"),
)}

# Options that no longer do anything: accepted, with one note each (README "Leftovers of interrupted runs").
RETIRED_OPTIONS: Mapping[str, str] = {
    "leftover_max_age": "retired: the holder of a region's lock deletes every unfinished copy of a run that "
                        "ended, whatever its age",
}

TARGET_OPTIONS: Mapping[str, Option] = {o.name: o for o in (
    Option("cloud", "", None, "a cloud of clouds.yaml whose credential (any auth type) this target uses, "
                              "instead of the options below ([master]: also $OS_CLOUD)"),
    Option("credential", "", None, "user,<base64 password>,keystone url,project (or the four options below)"),
    Option("user", "", None, "Keystone user (overrides the first field of credential)"),
    Option("password", "", None, "password in plain text (overrides the second field of credential)"),
    Option("keystone_url", "", None, "Keystone URL; /v3 is added unless it ends in a version"),
    Option("tenant", "", None, "project (tenant) name the credential is scoped to"),
    Option("user_domain_name", DEFAULT_DOMAIN, None, "Keystone v3 domain of the user"),
    Option("project_domain_name", DEFAULT_DOMAIN, None, "Keystone v3 domain of the project"),
    Option("use_keystone_v3", "", _boolean, "False selects Keystone v2.0 when keystone_url carries no version"),
    Option("metadata_set", "", _set, "properties to synchronise (comma separated); empty means all of them"),
    Option("metadata_condition", "", _condition, "expression over `image` selecting the images to synchronise"),
    Option("forcesyncs", "", _set, "master image ids synchronised whatever the other rules say"),
    Option("dontupdate", "", _set, "region checksums whose images are left alone"),
    Option("replace", "", _set, "region checksums (or any) whose images are replaced by a new copy"),
    Option("rename", "", _set, "region checksums (or any) whose images are renamed <name>.old and kept"),
    Option("ignore_regions", "", _set, "regions of this target left out unless named on the command line"),
    Option("only_tenant_images", "True", _boolean, "look only at the project's own images in the regions",
           inherited=True),
    Option("support_obsolete_images", "True", _boolean, "follow the master when it renames an image X_obsolete",
           inherited=True),
    Option("obsolete_syncprops", "", _set, "properties copied to the regions' X_obsolete images"),
    Option("list_images_timeout", "30", integer(minimum=1), "seconds allowed to list the images of a region",
           inherited=True),
    Option("http_timeout", "60", integer(minimum=1), "seconds an API call may wait for an answer; a transfer "
           "fails after this long without progress (connections time out after 10 s)"),
    Option("retries", "3", integer(minimum=0), "retries of a transient failure (connection error, timeout, HTTP "
           "502/503/504) of a read or idempotent write, and of a failed upload; 0 disables them"),
    Option("transfer_method", "auto", _transfer_method, "how copies are made: stream (through this client), "
           "glance-download (the region's Glance pulls from the master's; master target only) or auto "
           "(glance-download where the region offers it)"),
    Option("import_timeout", "3600", integer(minimum=1),
           "seconds a region waits for its glance-download imports, all of them together"),
    Option("import_stall_timeout", "120", integer(minimum=1),
           "seconds a glance-download import may go without progress (its task's Copied N MiB, status or "
           "updated_at) before it is judged dead, its copy deleted and, under auto, the image streamed"),
    Option("max_copies", "4", integer(minimum=1), "copies (uploads, imports, copy-image) of one region made "
           "at once"),
    Option("preserve_ids", "false", _flag, "create copies with the master image's id (a region that refuses "
           "it, because the id exists or existed there, gets a fresh id with a warning)"),
    Option("accept_conversion", "", _disk_format, "disk format a region's Glance may convert imported copies to "
           "(e.g. raw for Ceph-backed regions); empty: a copy whose data the region changed is refused"),
    Option("stores", "", _stores, "stores of a multi-store region's Glance every copy must be in (comma "
           "separated) or all; empty: the region's default store"),
    Option("relay", "true", _flag, "regions pull by glance-download from any region of their Keystone that "
           "holds a verified copy, not only from the master (auto, glance-download)"),
    Option("relay_fanout", "1", integer(minimum=1), "pulls a source (the master or a region) serves at a time "
           "with relay"),
    Option("precache", "false", _flag, "queue every ok image for the region's Glance image cache (edge sites)"),
    Option("tenant_id", "", _optional_text, "the project id (used by the mock; a real cloud reports its own)"),
)}

# The parser's [DEFAULT] section: what every section sees without saying it.
INHERITED_DEFAULTS = {o.name: o.default for o in TARGET_OPTIONS.values() if o.inherited}
# Each option's default as a value (the defaults of Target's fields).
TYPED_DEFAULTS: Mapping[str, Any] = {o.name: o.parse(o.default, f"default {o.name}", MASTER_TARGET)
                                     for o in TARGET_OPTIONS.values() if o.parse is not None}


@dataclass(frozen=True)
class Target:
    """One section of glancesync.conf other than [main]: a credential and its sync rules."""

    name: str
    user: str
    password: str = field(repr=False)
    keystone_url: str
    tenant: str
    user_domain_name: str = DEFAULT_DOMAIN
    project_domain_name: str = DEFAULT_DOMAIN
    use_keystone_v3: bool | None = None
    forcesyncs: frozenset[str] = frozenset()
    replace: frozenset[str] = frozenset()
    rename: frozenset[str] = frozenset()
    dontupdate: frozenset[str] = frozenset()
    ignore_regions: frozenset[str] = frozenset()
    metadata_condition: Condition | None = None
    metadata_set: frozenset[str] = frozenset()
    only_tenant_images: bool = TYPED_DEFAULTS["only_tenant_images"]
    tenant_id: str | None = None
    obsolete_syncprops: frozenset[str] = frozenset()
    support_obsolete_images: bool = TYPED_DEFAULTS["support_obsolete_images"]
    list_images_timeout: int = TYPED_DEFAULTS["list_images_timeout"]
    http_timeout: int = TYPED_DEFAULTS["http_timeout"]
    retries: int = TYPED_DEFAULTS["retries"]
    transfer_method: str = TYPED_DEFAULTS["transfer_method"]
    import_timeout: int = TYPED_DEFAULTS["import_timeout"]
    import_stall_timeout: int = TYPED_DEFAULTS["import_stall_timeout"]
    max_copies: int = TYPED_DEFAULTS["max_copies"]
    preserve_ids: bool = TYPED_DEFAULTS["preserve_ids"]
    accept_conversion: str | None = None
    stores: tuple[str, ...] = ()
    precache: bool = TYPED_DEFAULTS["precache"]
    relay: bool = TYPED_DEFAULTS["relay"]
    relay_fanout: int = TYPED_DEFAULTS["relay_fanout"]
    cloud: CloudCredential | None = field(default=None, repr=False)  # credential from clouds.yaml / OS_AUTH_TYPE

    @property
    def keystone_version(self) -> str:
        """``"3"`` or ``"2.0"`` (rules in :mod:`.keystone`; ``use_keystone_v3 = False`` asks for v2.0)."""
        return keystone.api_version(self.keystone_url, keystone.V2 if self.use_keystone_v3 is False else None)


@dataclass(frozen=True)
class Config:
    """The whole configuration of a run."""

    master_region: str
    targets: Mapping[str, Target]
    preferable_order: tuple[str, ...] = ()
    max_children: int = 1
    images_dir: str = DEFAULT_IMAGES_DIR
    lock_dir: str = ""
    coordination_url: str = ""  # as written; see locks_url
    source: str = "<environment>"
    notes: tuple[str, ...] = ()  # warnings about the file (unknown options), for the shells to log

    @property
    def master(self) -> Target:
        return self.targets[MASTER_TARGET]

    @property
    def locks_url(self) -> str:
        """The tooz URL of the region locks: ``coordination_url``, else ``file://<lock_dir>``."""
        return self.coordination_url or "file://" + os.path.abspath(self.lock_dir or default_lock_dir(os.environ))


def load(path: str | None = None, overrides: Mapping[str, str] | None = None,
         environ: Mapping[str, str] | None = None) -> Config:
    """Read the configuration (see the module docstring for where from)."""
    environ = os.environ if environ is None else environ
    reader = read_file(find_config_file(path, environ), INHERITED_DEFAULTS, overrides or {})
    return _build(reader, environ)


def load_string(text: str, overrides: Mapping[str, str] | None = None,
                environ: Mapping[str, str] | None = None, source: str = "<string>") -> Config:
    """Like :func:`load` for configuration text (tests, embedded use)."""
    return _build(read_string(text, source, INHERITED_DEFAULTS, overrides or {}),
                  os.environ if environ is None else environ)


def _build(reader: Reader, environ: Mapping[str, str]) -> Config:
    parser = reader.parser
    target_names = [s for s in parser.sections() if s != MAIN_SECTION]
    if MASTER_TARGET not in target_names:
        target_names.insert(0, MASTER_TARGET)
        parser.add_section(MASTER_TARGET)
    master_region = reader.text(MAIN_SECTION, "master_region") or environ.get("OS_REGION_NAME")
    if not master_region and credentials.cloud_name(reader, MASTER_TARGET, environ) is None:
        raise ConfigError(MISSING_MASTER_REGION)
    targets = {name: _build_target(reader, name, environ) for name in target_names}
    if not master_region:  # the master cloud's region_name, as OS_REGION_NAME would be
        master_region = targets[MASTER_TARGET].cloud.region_name if targets[MASTER_TARGET].cloud else None
        if not master_region:
            raise ConfigError(MISSING_MASTER_REGION)
    main = _option_values(reader, MAIN_SECTION, MAIN_OPTIONS)
    lock_dir = main["lock_dir"] or default_lock_dir(environ)
    return Config(
        master_region=master_region,
        targets=targets,
        preferable_order=main["preferable_order"],
        max_children=main["max_children"],
        images_dir=main["images_dir"],
        lock_dir=lock_dir,
        coordination_url=main["coordination_url"],
        source=reader.source,
        notes=tuple(unknown_options(parser, reader.source)),
    )


def _build_target(reader: Reader, name: str, environ: Mapping[str, str]) -> Target:
    return Target(name=name, **credentials.credential(reader, name, environ),
                  **_option_values(reader, name, TARGET_OPTIONS))


def _option_values(reader: Reader, section: str, options: Mapping[str, Option]) -> dict[str, Any]:
    """Every option of the table that has a parser, read from ``section``."""
    return {option.name: option.value(reader, section) for option in options.values() if option.parse is not None}


def default_lock_dir(environ: Mapping[str, str]) -> str:
    """``$XDG_RUNTIME_DIR/glancesync`` (a per-user directory that vanishes at logout/reboot), else
    ``/tmp/glancesync-<uid>``."""
    runtime = environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return os.path.join(runtime, "glancesync")
    return f"/tmp/glancesync-{os.getuid()}"


def unknown_options(parser: configparser.ConfigParser, source: str) -> list[str]:
    """One note per option that its section does not know (a typo such as ``ignore_region``)."""
    inherited = set(parser.defaults())
    notes = [_unknown(source, "DEFAULT", option)
             for option in parser.defaults()
             if option not in MAIN_OPTIONS and option not in TARGET_OPTIONS]
    for section in parser.sections():
        known = MAIN_OPTIONS if section == MAIN_SECTION else TARGET_OPTIONS
        notes += [_unknown(source, section, option)
                  for option in parser.options(section) if option not in inherited and option not in known]
    return notes


def _unknown(source: str, section: str, option: str) -> str:
    return f"{source}: [{section}] {option}: {RETIRED_OPTIONS.get(option, 'unknown option')}, ignored"


def sample() -> str:
    """An annotated glancesync.conf naming every option the loader knows, with its default."""
    lines = ["# glancesync.conf: every option, with its default (empty: none).",
             "# Lists are comma separated; write a literal % as %%.", "", f"[{MAIN_SECTION}]"]
    for option in MAIN_OPTIONS.values():
        lines += [f"# {option.meaning}", f"{option.name} = {option.default}".rstrip()]
    lines += ["", "# [DEFAULT] options are inherited by every section.", "[DEFAULT]", "",
              "# The target of the master region; add a section like it for every other target.",
              f"[{MASTER_TARGET}]"]
    for option in TARGET_OPTIONS.values():
        lines += [f"# {option.meaning}", f"{option.name} = {option.default}".rstrip()]
    return "\n".join(lines) + "\n"
