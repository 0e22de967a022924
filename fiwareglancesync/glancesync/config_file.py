"""glancesync.conf as INI text: where the file is, parsing it with ``--config`` overrides, and the
raw values of its options, with every error naming file, section and option but never a secret.

What the options mean and how their values are typed is :mod:`.config`'s business.
"""

from __future__ import annotations

import configparser
import os
import re
from typing import Callable, Mapping, TypeVar

from .errors import ConfigError

DEFAULT_CONFIG_PATHS = ("/etc/glancesync.conf", "/etc/fiware.d/glancesync.conf")
MAIN_SECTION = "main"
SECRET_OPTIONS = ("password", "credential")
_SECRET_WORD = re.compile("|".join(SECRET_OPTIONS), re.IGNORECASE)

Number = TypeVar("Number", int, float)


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


def read_file(path: str | None, defaults: Mapping[str, str], overrides: Mapping[str, str]) -> Reader:
    """The parsed file ``path`` (None: no file, the source is ``<environment>``) with ``defaults``
    in its [DEFAULT] section and ``overrides`` applied."""
    parser = _new_parser(defaults)
    if path:
        try:
            with open(path, encoding="utf-8") as stream:
                parser.read_file(stream, source=path)
        except configparser.Error as exc:
            raise ConfigError(f"{path}: {_parse_error(exc)}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot be read ({exc})") from None
    return Reader(_with_overrides(parser, overrides), path or "<environment>")


def read_string(text: str, source: str, defaults: Mapping[str, str], overrides: Mapping[str, str]) -> Reader:
    """Like :func:`read_file` for configuration text (``source`` names it in messages)."""
    parser = _new_parser(defaults)
    try:
        parser.read_string(text, source=source)
    except configparser.Error as exc:
        raise ConfigError(f"{source}: {_parse_error(exc)}") from None
    return Reader(_with_overrides(parser, overrides), source)


def bounded_number(text: str, kind: Callable[[str], Number], minimum: Number, error: Callable[[str], Exception],
                   not_a_number: str, too_small: str) -> Number:
    """``kind(text)`` when it is at least ``minimum``; else ``error(reason)`` is raised, the reason
    being ``not_a_number`` or ``too_small`` formatted with ``text``, ``number`` and ``minimum``.
    (The engine's glancesync.conf and the service's settings word their reasons differently.)"""
    try:
        number = kind(text)
    except ValueError:
        raise error(not_a_number.format(text=text, minimum=minimum)) from None
    if number < minimum:
        raise error(too_small.format(text=text, number=number, minimum=minimum))
    return number


class Reader:
    """The raw values of a parsed file; every error names file, section and option."""

    def __init__(self, parser: configparser.ConfigParser, source: str):
        self.parser = parser
        self.source = source

    def where(self, section: str, option: str) -> str:
        return f"{self.source}: [{section}] {option}"

    def raw(self, section: str, option: str) -> str | None:
        if section == MAIN_SECTION and not self.parser.has_section(section):
            return self.parser.defaults().get(option)
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
        return value.strip() or None


def _new_parser(defaults: Mapping[str, str]) -> configparser.ConfigParser:
    # strict=False: a repeated section or option keeps the last value, as the original did.
    return configparser.ConfigParser(defaults=defaults, strict=False)


def _with_overrides(parser: configparser.ConfigParser, overrides: Mapping[str, str]) -> configparser.ConfigParser:
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
    return parser


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
