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

Every problem raises :class:`ConfigError` naming the file, the section and the option.
"""

from __future__ import annotations

import base64
import binascii
import configparser
import os
import re
from dataclasses import dataclass, field
from typing import Mapping

from . import keystone
from .clouds import CloudCredential, load_cloud, load_environment_credential
from .condition import Condition, ConditionError
from .errors import ConfigError
from .region import MASTER_TARGET

DEFAULT_CONFIG_PATHS = ("/etc/glancesync.conf", "/etc/fiware.d/glancesync.conf")
DEFAULT_IMAGES_DIR = "/var/lib/glance/images"
DEFAULT_DOMAIN = keystone.DEFAULT_DOMAIN
MAIN_SECTION = "main"



@dataclass(frozen=True)
class Option:
    """One option the loader knows: its name, its default as it would be written in the file
    (empty: none), and what it means.  The loader takes its defaults from these tables and the
    sample configuration (:func:`sample`) is printed from them, so neither can drift."""

    name: str
    default: str
    meaning: str


MAIN_OPTIONS: Mapping[str, Option] = {o.name: o for o in (
    Option("master_region", "", "region the images are copied from (required; else $OS_REGION_NAME)"),
    Option("preferable_order", "", "regions synchronised first, in this order (T:Region for other targets)"),
    Option("max_children", "1", "regions synchronised at once with --parallel"),
    Option("images_dir", DEFAULT_IMAGES_DIR, "directory searched for <master image id> files before the "
                                             "data is streamed from the master region"),
    Option("lock_dir", "", "directory of the per-region locks that keep two syncs of a region apart "
                           "(empty: $XDG_RUNTIME_DIR/glancesync, else /tmp/glancesync-<uid>)"),
)}

TARGET_OPTIONS: Mapping[str, Option] = {o.name: o for o in (
    Option("cloud", "", "a cloud of clouds.yaml whose credential (any auth type) this target uses, "
                        "instead of the options below ([master]: also $OS_CLOUD)"),
    Option("credential", "", "user,<base64 password>,keystone url,project (or the four options below)"),
    Option("user", "", "Keystone user (overrides the first field of credential)"),
    Option("password", "", "password in plain text (overrides the second field of credential)"),
    Option("keystone_url", "", "Keystone URL; /v3 is added unless it ends in a version"),
    Option("tenant", "", "project (tenant) name the credential is scoped to"),
    Option("user_domain_name", DEFAULT_DOMAIN, "Keystone v3 domain of the user"),
    Option("project_domain_name", DEFAULT_DOMAIN, "Keystone v3 domain of the project"),
    Option("use_keystone_v3", "", "False selects Keystone v2.0 when keystone_url carries no version"),
    Option("metadata_set", "", "properties to synchronise (comma separated); empty means all of them"),
    Option("metadata_condition", "", "expression over `image` selecting the images to synchronise"),
    Option("forcesyncs", "", "master image ids synchronised whatever the other rules say"),
    Option("dontupdate", "", "region checksums whose images are left alone"),
    Option("replace", "", "region checksums (or any) whose images are replaced by a new copy"),
    Option("rename", "", "region checksums (or any) whose images are renamed <name>.old and kept"),
    Option("ignore_regions", "", "regions of this target left out unless named on the command line"),
    Option("only_tenant_images", "True", "look only at the project's own images in the regions"),
    Option("support_obsolete_images", "True", "follow the master when it renames an image X_obsolete"),
    Option("obsolete_syncprops", "", "properties copied to the regions' X_obsolete images"),
    Option("list_images_timeout", "30", "seconds allowed to list the images of a region"),
    Option("http_timeout", "60", "seconds an API call may wait for an answer; a transfer fails after "
                                 "this long without progress (connections time out after 10 s)"),
    Option("retries", "3", "retries of a transient failure (connection error, timeout, HTTP 502/503/504) "
                           "of a read or idempotent write, and of a failed upload; 0 disables them"),
    Option("transfer_method", "auto", "how copies are made: stream (through this client), glance-download "
                                      "(the region's Glance pulls from the master's; master target only) "
                                      "or auto (glance-download where the region offers it)"),
    Option("import_timeout", "3600", "seconds a glance-download import may take before it is abandoned"),
    Option("leftover_max_age", "86400", "seconds after which an unfinished copy made from another host is "
                                        "deleted as a leftover"),
    Option("tenant_id", "", "the project id (used by the mock; a real cloud reports its own)"),
)}

# Built-in defaults, visible from every section as the original's DEFAULT section was.
BUILTIN_DEFAULTS = {name: TARGET_OPTIONS[name].default
                    for name in ("support_obsolete_images", "only_tenant_images", "list_images_timeout")}

CREDENTIAL_FIELDS = ("user", "password", "keystone_url", "tenant")

# master credential field -> environment variables consulted, in order
MASTER_ENV_FALLBACK = {
    "user": ("OS_USERNAME",),
    "password": ("OS_PASSWORD",),
    "keystone_url": ("OS_AUTH_URL",),
    "tenant": ("OS_TENANT_NAME", "OS_PROJECT_NAME"),
}
MASTER_ENV_MESSAGES = {
    "user": "A username for master target must be provided in configuration or OS_USERNAME must be defined",
    "password": "A password for master target must be provided in configuration or OS_PASSWORD must be "
                "defined. In the configuration file, passwords must be encoded with base64",
    "keystone_url": "A keystone url for master target must be provided in configuration or OS_AUTH_URL must be defined.",
    "tenant": "A tenant name for master target must be provided in configuration or OS_TENANT_NAME must be defined.",
}
MISSING_CREDENTIAL = ("A credential parameter is mandatory for each target "
                      "(or the set: user, password, tenant, keystone_url)")
MISSING_MASTER_REGION = "A master region must be set in the configuration or OS_REGION_NAME must be defined"


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
    only_tenant_images: bool = True
    tenant_id: str | None = None
    obsolete_syncprops: frozenset[str] = frozenset()
    support_obsolete_images: bool = True
    list_images_timeout: int = 30
    http_timeout: int = 60
    retries: int = 3
    leftover_max_age: int = 86400
    transfer_method: str = "auto"
    import_timeout: int = 3600
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
    source: str = "<environment>"
    notes: tuple[str, ...] = ()  # warnings about the file (unknown options), for the shells to log

    @property
    def master(self) -> Target:
        return self.targets[MASTER_TARGET]


def find_config_file(path: str | None, environ: Mapping[str, str]) -> str | None:
    """The file to read: ``GLANCESYNC_CONFIG``, then ``path``, then the default locations."""
    env_path = environ.get("GLANCESYNC_CONFIG")
    if env_path:
        if not os.path.isfile(env_path):
            raise ConfigError(f"GLANCESYNC_CONFIG names {env_path}, which is not a readable file")
        return env_path
    if path:
        if not os.path.isfile(path):
            raise ConfigError(f"configuration file {path} does not exist")
        return path
    for candidate in DEFAULT_CONFIG_PATHS:
        if os.path.isfile(candidate):
            return candidate
    return None


def parse_overrides(tokens: list[str]) -> dict[str, str]:
    """``key=value`` tokens of ``--config`` -> dict; split on the first ``=``, keys stripped.

    An error message shows a token only up to a secret option's name (``password``...)."""
    overrides: dict[str, str] = {}
    for token in tokens:
        key, sep, value = token.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--config {_without_secret(token)!r}: config options must have the format key=value")
        overrides[key.strip()] = value
    return overrides


def load(path: str | None = None, overrides: Mapping[str, str] | None = None,
         environ: Mapping[str, str] | None = None) -> Config:
    """Read the configuration (see the module docstring for where from)."""
    environ = os.environ if environ is None else environ
    chosen = find_config_file(path, environ)
    parser = _new_parser()
    source = chosen or "<environment>"
    if chosen:
        try:
            with open(chosen, encoding="utf-8") as stream:
                parser.read_file(stream, source=chosen)
        except configparser.Error as exc:
            raise ConfigError(f"{chosen}: {_parse_error(exc)}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{chosen}: cannot be read ({exc})") from None
    _apply_overrides(parser, overrides or {})
    return _build(_Reader(parser, source), environ)


def load_string(text: str, overrides: Mapping[str, str] | None = None,
                environ: Mapping[str, str] | None = None, source: str = "<string>") -> Config:
    """Like :func:`load` for configuration text (tests, embedded use)."""
    parser = _new_parser()
    try:
        parser.read_string(text, source=source)
    except configparser.Error as exc:
        raise ConfigError(f"{source}: {_parse_error(exc)}") from None
    _apply_overrides(parser, overrides or {})
    return _build(_Reader(parser, source), os.environ if environ is None else environ)


def _new_parser() -> configparser.ConfigParser:
    # strict=False: a repeated section or option keeps the last value, as the original did.
    return configparser.ConfigParser(defaults=BUILTIN_DEFAULTS, strict=False)


def _apply_overrides(parser: configparser.ConfigParser, overrides: Mapping[str, str]) -> None:
    for key, value in overrides.items():
        parts = key.split(".")
        if len(parts) == 1:
            section, option = configparser.DEFAULTSECT, parts[0]
        elif len(parts) == 2 and all(parts):
            section, option = parts
            if section != configparser.DEFAULTSECT and not parser.has_section(section):
                parser.add_section(section)
        else:
            raise ConfigError(f"--config {key}: keys are 'option' or 'section.option'")
        try:
            parser.set(section, option, value)
        except ValueError as exc:  # interpolation syntax such as a lone '%'
            cause = "invalid interpolation syntax (write a literal % as %%)" if _is_secret(option) else exc
            raise ConfigError(f"--config {key}: {cause}") from None


SECRET_OPTIONS = ("password", "credential")
_SECRET_WORD = re.compile("|".join(SECRET_OPTIONS), re.IGNORECASE)


def _is_secret(option: str) -> bool:
    return option.strip().lower() in SECRET_OPTIONS


def _without_secret(text: str) -> str:
    """``text`` cut after the first secret option name it holds (``master.password:x`` ->
    ``master.password...``); unchanged when it names none."""
    match = _SECRET_WORD.search(text)
    return text if match is None else text[: match.end()] + "..."


def _parse_error(exc: configparser.Error) -> str:
    """configparser's parse error in one line, without the text of a line naming a secret."""
    if isinstance(exc, configparser.MissingSectionHeaderError):
        return f"line {exc.lineno}: {_shown(exc.line)} comes before any [section] header"
    if isinstance(exc, configparser.ParsingError):
        # ParsingError keeps each line as its repr() already
        return "cannot be parsed: " + ", ".join(f"line {number}: {_shown(line, quoted=True)}"
                                                for number, line in exc.errors)
    return _without_secret(_flattened(exc))


def _shown(line: str, quoted: bool = False) -> str:
    if _SECRET_WORD.search(line):
        return "a line naming a secret (not shown)"
    return line if quoted else repr(line.strip())


def _flattened(exc: Exception) -> str:
    # Not errors.one_line: configparser puts the offending line on the second line of its
    # messages, and that is the useful part.
    return " ".join(str(exc).split())


class _Reader:
    """Typed access to the parser; every error names file, section and option."""

    def __init__(self, parser: configparser.ConfigParser, source: str):
        self.parser = parser
        self.source = source

    def where(self, section: str, option: str) -> str:
        return f"{self.source}: [{section}] {option}"

    def raw(self, section: str, option: str) -> str | None:
        if section == MAIN_SECTION and not self.parser.has_section(section):
            value = self.parser.defaults().get(option)
            return value
        try:
            return self.parser.get(section, option, fallback=None)
        except configparser.InterpolationError as exc:
            cause = "invalid % interpolation in the value" if _is_secret(option) else _flattened(exc)
            raise ConfigError(f"{self.where(section, option)}: {cause} (write a literal % as %%)") from None

    def text(self, section: str, option: str) -> str | None:
        """The stripped value, None when absent or empty."""
        value = self.raw(section, option)
        if value is None:
            return None
        value = value.strip()
        return value or None

    def items(self, section: str, option: str) -> tuple[str, ...]:
        value = self.text(section, option)
        if not value:
            return ()
        return tuple(item.strip() for item in value.split(","))

    def boolean(self, section: str, option: str, default: bool | None) -> bool | None:
        value = self.text(section, option)
        if value is None:
            return default
        try:
            return self.parser.BOOLEAN_STATES[value.lower()]
        except KeyError:
            raise ConfigError(f"{self.where(section, option)}: {value!r} is not a boolean "
                              "(use true/false, yes/no, on/off or 1/0)") from None

    def integer(self, section: str, option: str, default: int, minimum: int = 0) -> int:
        value = self.text(section, option)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise ConfigError(f"{self.where(section, option)}: {value!r} is not an integer") from None
        if number < minimum:
            raise ConfigError(f"{self.where(section, option)}: must be at least {minimum}, got {number}")
        return number


def _build(reader: _Reader, environ: Mapping[str, str]) -> Config:
    parser = reader.parser
    target_names = [s for s in parser.sections() if s != MAIN_SECTION]
    if MASTER_TARGET not in target_names:
        target_names.insert(0, MASTER_TARGET)
        parser.add_section(MASTER_TARGET)
    master_region = reader.text(MAIN_SECTION, "master_region") or environ.get("OS_REGION_NAME")
    if not master_region and _cloud_name(reader, MASTER_TARGET, environ) is None:
        raise ConfigError(MISSING_MASTER_REGION)
    targets = {name: _build_target(reader, name, environ) for name in target_names}
    if not master_region:  # the master cloud's region_name, as OS_REGION_NAME would be
        master_region = targets[MASTER_TARGET].cloud.region_name if targets[MASTER_TARGET].cloud else None
        if not master_region:
            raise ConfigError(MISSING_MASTER_REGION)
    return Config(
        master_region=master_region,
        targets=targets,
        preferable_order=reader.items(MAIN_SECTION, "preferable_order"),
        max_children=reader.integer(MAIN_SECTION, "max_children", int(MAIN_OPTIONS["max_children"].default),
                                    minimum=1),
        images_dir=reader.text(MAIN_SECTION, "images_dir") or MAIN_OPTIONS["images_dir"].default,
        lock_dir=reader.text(MAIN_SECTION, "lock_dir") or default_lock_dir(environ),
        source=reader.source,
        notes=tuple(unknown_options(parser, reader.source)),
    )


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
    notes = [f"{source}: [DEFAULT] {option}: unknown option, ignored"
             for option in parser.defaults()
             if option not in MAIN_OPTIONS and option not in TARGET_OPTIONS]
    for section in parser.sections():
        known = MAIN_OPTIONS if section == MAIN_SECTION else TARGET_OPTIONS
        notes += [f"{source}: [{section}] {option}: unknown option, ignored"
                  for option in parser.options(section) if option not in inherited and option not in known]
    return notes


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


def _build_target(reader: _Reader, name: str, environ: Mapping[str, str]) -> Target:
    credential = _credential(reader, name, environ)
    condition = None
    condition_text = reader.text(name, "metadata_condition")
    if condition_text:
        try:
            condition = Condition(condition_text)
        except ConditionError as exc:
            raise ConfigError(f"{reader.where(name, 'metadata_condition')} of target {name}: {exc}") from None
    return Target(
        name=name,
        **credential,
        use_keystone_v3=reader.boolean(name, "use_keystone_v3", None),
        forcesyncs=frozenset(reader.items(name, "forcesyncs")),
        replace=frozenset(reader.items(name, "replace")),
        rename=frozenset(reader.items(name, "rename")),
        dontupdate=frozenset(reader.items(name, "dontupdate")),
        ignore_regions=frozenset(reader.items(name, "ignore_regions")),
        metadata_condition=condition,
        metadata_set=frozenset(reader.items(name, "metadata_set")),
        only_tenant_images=reader.boolean(name, "only_tenant_images", True),  # BUILTIN_DEFAULTS apply
        tenant_id=reader.text(name, "tenant_id"),
        obsolete_syncprops=frozenset(reader.items(name, "obsolete_syncprops")),
        support_obsolete_images=reader.boolean(name, "support_obsolete_images", True),
        list_images_timeout=reader.integer(name, "list_images_timeout", 30, minimum=1),
        http_timeout=reader.integer(name, "http_timeout", _default("http_timeout"), minimum=1),
        retries=reader.integer(name, "retries", _default("retries"), minimum=0),
        leftover_max_age=reader.integer(name, "leftover_max_age", _default("leftover_max_age"), minimum=0),
        transfer_method=_transfer_method(reader, name),
        import_timeout=reader.integer(name, "import_timeout", _default("import_timeout"), minimum=1),
    )


TRANSFER_METHODS = ("auto", "stream", "glance-download")


def _transfer_method(reader: _Reader, name: str) -> str:
    """``transfer_method`` (README "How copies are made"): glance-download only for the master
    target, whose
    regions' Glances share the master's Keystone and catalog."""
    where = reader.where(name, "transfer_method")
    method = (reader.text(name, "transfer_method") or TARGET_OPTIONS["transfer_method"].default).lower()
    if method not in TRANSFER_METHODS:
        raise ConfigError(f"{where}: {method!r} is not one of {', '.join(TRANSFER_METHODS)}")
    if method == "glance-download" and name != MASTER_TARGET:
        raise ConfigError(f"{where}: glance-download works only for regions of the master target (a region's "
                          f"Glance pulls with the caller's token from its own catalog); target {name} is behind "
                          "another Keystone: use stream or auto")
    return method


def _default(option: str) -> int:
    return int(TARGET_OPTIONS[option].default)


def _cloud_name(reader: _Reader, name: str, environ: Mapping[str, str]) -> str | None:
    """The clouds.yaml cloud a target uses: its ``cloud`` option; for ``[master]`` without any
    credential option, ``$OS_CLOUD``."""
    cloud = reader.text(name, "cloud")
    if cloud is None and name == MASTER_TARGET and environ.get("OS_CLOUD"):
        if not any(reader.text(name, option) for option in ("credential", *CREDENTIAL_FIELDS)):
            cloud = environ["OS_CLOUD"]
    return cloud


def _credential(reader: _Reader, name: str, environ: Mapping[str, str]) -> dict[str, object]:
    """user/password/keystone_url/tenant (+ domains, or a ``cloud``) of a target.

    ``cloud = <name>`` (``[master]``: ``$OS_CLOUD``) takes everything from clouds.yaml; for
    ``[master]`` without credential options, ``OS_AUTH_TYPE=v3applicationcredential`` takes it
    from ``OS_APPLICATION_CREDENTIAL_*``.  Otherwise
    ``credential = user,<base64 password>,url,tenant`` provides all four; the separate options
    ``user``, ``password`` (plain text), ``keystone_url`` and ``tenant`` override single fields.
    """
    cloud_name = _cloud_name(reader, name, environ)
    explicit = [option for option in ("credential", *CREDENTIAL_FIELDS) if reader.text(name, option)]
    if cloud_name is not None and reader.text(name, "cloud") is not None and explicit:
        raise ConfigError(f"{reader.where(name, 'cloud')}: cannot be combined with {', '.join(explicit)} "
                          "(the cloud's clouds.yaml entry holds the whole credential)")
    if cloud_name is not None:
        return _from_cloud(load_cloud(cloud_name, environ, reader.where(name, "cloud")))
    if name == MASTER_TARGET and not explicit and environ.get("OS_AUTH_TYPE", "password") not in ("", "password",
                                                                                                  "v3password"):
        return _from_cloud(load_environment_credential(environ, f"{reader.source}: [{name}]"))
    values: dict[str, str] = {}
    packed = reader.text(name, "credential")
    if packed:
        values.update(_unpack_credential(reader, name, packed))
    for option in CREDENTIAL_FIELDS:
        value = reader.text(name, option)
        if value is not None:
            values[option] = value
    if name == MASTER_TARGET:
        for option, variables in MASTER_ENV_FALLBACK.items():
            if option not in values:
                found = next((environ[v] for v in variables if environ.get(v)), None)
                if found is None:
                    raise ConfigError(MASTER_ENV_MESSAGES[option])
                values[option] = found
        user_domain = reader.text(name, "user_domain_name") or environ.get("OS_USER_DOMAIN_NAME")
        project_domain = reader.text(name, "project_domain_name") or environ.get("OS_PROJECT_DOMAIN_NAME")
    else:
        missing = [option for option in CREDENTIAL_FIELDS if option not in values]
        if missing:
            raise ConfigError(f"{reader.source}: [{name}] {MISSING_CREDENTIAL}; missing: {', '.join(missing)}")
        user_domain = reader.text(name, "user_domain_name")
        project_domain = reader.text(name, "project_domain_name")
    values["user_domain_name"] = user_domain or DEFAULT_DOMAIN
    values["project_domain_name"] = project_domain or DEFAULT_DOMAIN
    return values


def _from_cloud(cloud: CloudCredential) -> dict[str, object]:
    return {"user": "", "password": "", "keystone_url": cloud.auth_url, "tenant": cloud.project,
            "user_domain_name": DEFAULT_DOMAIN, "project_domain_name": DEFAULT_DOMAIN, "cloud": cloud}


def _unpack_credential(reader: _Reader, name: str, packed: str) -> dict[str, str]:
    # A backslash at the end of a line is a line continuation inside the value, not data.
    packed = packed.replace("\\\n", "")
    parts = [part.strip() for part in packed.split(",")]
    where = reader.where(name, "credential")
    if len(parts) != 4 or not all(parts):
        raise ConfigError(f"{where}: expected 4 comma-separated fields "
                          f"(user,base64 password,keystone url,tenant), got {len(parts)}")
    user, encoded, url, tenant = parts
    try:
        password = base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):  # ValueError: non-ASCII text; UnicodeDecodeError is one
        raise ConfigError(f"{where}: the password (second field) is not valid base64") from None
    return {"user": user, "password": password, "keystone_url": url, "tenant": tenant}
