"""Bad input ends in one clear error naming what is wrong, never a traceback, never a secret
(README "Differences from the original"): configuration text, --config overrides, backup CSV rows,
region names used as
file names, metadata_condition expressions that would exhaust memory or the stack."""

from __future__ import annotations

import base64
import io
import time

import pytest

from fiwareglancesync.glancesync.condition import MAX_REPEAT, Condition, ConditionError
from fiwareglancesync.glancesync.config import load_string, parse_overrides
from fiwareglancesync.glancesync.errors import BackupFormatError, ConfigError
from fiwareglancesync.glancesync.image import read_backup
from fiwareglancesync.glancesync.region import safe_file_name
from tests.factories import image

HEAD = "[main]\nmaster_region = Master\n[master]\nuser = u\nkeystone_url = http://k/v3\ntenant = t\n"
B64 = base64.b64encode(b"c0rrectHorse").decode()

# (id, configuration text, secret that must not be shown, expected message start)
CONFIG_ROWS = [
    ("lone % in a password", HEAD + "password = Sup3r%Secret\n", "Secret",
     "g.conf: [master] password: invalid % interpolation in the value (write a literal % as %%)"),
    ("%(name)s in a password", HEAD + "password = Pa%(ssw0rd)s\n", "ssw0rd",
     "g.conf: [master] password: invalid % interpolation in the value"),
    ("password before any section", "password = Secr3tBefore\n" + HEAD, "Secr3tBefore",
     "g.conf: line 1: a line naming a secret (not shown) comes before any [section] header"),
    ("unparsable line after a credential", HEAD + f"credential = u,{B64},http://k,t\ncredential\n", B64,
     "g.conf: cannot be parsed: line 8: a line naming a secret (not shown)"),
    ("non-ASCII base64 in credential", "[main]\nmaster_region = M\n[master]\ncredential = demo,pässwörd,http://x/v3,demo\n",
     "pässwörd", "g.conf: [master] credential: the password (second field) is not valid base64"),
    ("credential with 3 fields", f"[main]\nmaster_region = M\n[master]\ncredential = demo,{B64},http://x/v3\n",
     B64, "g.conf: [master] credential: expected 4 comma-separated fields"),
]


@pytest.mark.parametrize("text,secret,expected", [row[1:] for row in CONFIG_ROWS], ids=[row[0] for row in CONFIG_ROWS])
def test_configuration_errors_name_the_place_and_hide_the_secret(text, secret, expected):
    with pytest.raises(ConfigError) as raised:
        load_string(text, environ={}, source="g.conf")
    message = str(raised.value)
    assert message.startswith(expected), message
    assert secret not in message and "\n" not in message


def test_a_parse_error_of_an_ordinary_line_still_shows_the_line():
    with pytest.raises(ConfigError, match=r"^g.conf: cannot be parsed: line 3: '\[master\\n'$"):
        load_string("[main]\nmaster_region = M\n[master\n", environ={}, source="g.conf")


@pytest.mark.parametrize("tokens,secret,expected", [
    (["master.password=My%Secret"], "My%Secret",
     "--config master.password: invalid interpolation syntax (write a literal % as %%)"),
    (["master.password:MySecret2"], "MySecret2",
     "--config 'master.password...': config options must have the format key=value"),
    (["master.credential"], None, "--config 'master.credential...': config options must have the format key=value"),
    (["nonsense"], None, "--config 'nonsense': config options must have the format key=value"),
])
def test_override_errors_hide_the_secret(tokens, secret, expected):
    with pytest.raises(ConfigError) as raised:
        load_string(HEAD + "password = p\n", parse_overrides(tokens), environ={})
    assert str(raised.value) == expected
    assert secret is None or secret not in str(raised.value)


def test_a_csv_field_over_the_csv_limit_is_a_backup_format_error():
    row = "Master,big,m1,active,1,c,o,True,{'x': '" + "a" * 140_000 + "'}\r\n"
    with pytest.raises(BackupFormatError, match=r"^store.csv, line 2: not a valid CSV row \(field larger"):
        list(read_backup(io.StringIO("Master,ok,m0,active,1,c,o,True,{}\r\n" + row), "store.csv"))


def test_long_region_names_become_file_names_a_file_system_accepts():
    long_a, long_b = "b" * 300, "b" * 299 + "c"
    assert len(safe_file_name(long_a).encode()) <= 200
    assert safe_file_name(long_a) != safe_file_name(long_b)
    assert len(safe_file_name("ñ" * 300).encode()) <= 200
    assert safe_file_name("..") == "_."
    assert safe_file_name("other:Madrid") == "other_Madrid"


@pytest.mark.parametrize("text,expected", [
    ("not " * 20000 + "image.is_public", "the expression has 80015 characters, more than the 10000 allowed"),
    ("-" * 1000 + "1", "the expression is nested more deeply than the 100 levels allowed"),
    ("+".join(["1"] * 50000), "the expression has 99999 characters"),
    ("(" * 3000 + "1" + ")" * 3000, "too many nested parentheses"),   # Python's parser says it
])
def test_oversized_conditions_are_refused_at_load(text, expected):
    with pytest.raises(ConditionError) as raised:
        Condition(text)
    assert expected in str(raised.value)
    assert len(str(raised.value)) < 400, "the message quotes at most the start of the expression"


@pytest.mark.parametrize("text", [
    "'a' * 1000000000 != image.name",
    "image.name * 1000000000 == ''",
    "[1] * 1000000000 == []",
    "'a' * 999999 + 'a' * 999999 == ''",
    "'%0999999999d' % 1 == ''",
    "'%*d' % (1000000000, 1) == ''",
])
def test_evaluation_never_builds_a_huge_value(text):
    condition = Condition(text)
    started = time.process_time()
    with pytest.raises(ValueError, match=str(MAX_REPEAT)):
        condition.evaluate(image(), set())
    assert time.process_time() - started < 1.0


@pytest.mark.parametrize("text,expected", [
    ("image.name * 3 == 'imgimgimg'", True),
    ("'%s-%s' % ('a', image.name) == 'a-img'", True),
    ("image.size * 2 + 1 == 21", True),
    ("[1] * 3 + [2] == [1, 1, 1, 2]", True),
    ("'%5d' % 3 == '    3'", True),
])
def test_ordinary_arithmetic_still_works(text, expected):
    assert Condition(text).evaluate(image(), set()) is expected
