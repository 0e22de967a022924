"""The loader's option tables: unknown options are noted, the sample names every option."""

from __future__ import annotations

import io
import re

import pytest

from fiwareglancesync.config_command import main as config_command
from fiwareglancesync.glancesync.config import MAIN_OPTIONS, TARGET_OPTIONS, load_string, sample

ENV = {"OS_USERNAME": "u", "OS_PASSWORD": "p", "OS_AUTH_URL": "http://k/v3", "OS_TENANT_NAME": "t",
       "OS_REGION_NAME": "Spain"}


def test_each_unknown_option_is_noted_with_file_section_and_option():
    text = ("[main]\nmaster_region = Spain\nmaster_regoin = x\n[DEFAULT]\nmetadata_sett = a\n"
            "[master]\nignore_region = Trento\nmetadata_set = nid\n[other]\ncredential = u,cA==,http://k,t\n"
            "max_children = 3\n")
    config = load_string(text, environ=ENV, source="g.conf")
    assert config.notes == (
        "g.conf: [DEFAULT] metadata_sett: unknown option, ignored",
        "g.conf: [main] master_regoin: unknown option, ignored",
        "g.conf: [master] ignore_region: unknown option, ignored",
        "g.conf: [other] max_children: unknown option, ignored",   # a [main] option, not a target's
    )


def test_known_options_and_inherited_defaults_give_no_note():
    config = load_string("[main]\nmaster_region = S\n[DEFAULT]\nmetadata_set = nid\n[master]\nrename = any\n",
                         environ=ENV)
    assert config.notes == ()


def test_the_sample_loads_without_notes_and_names_every_option_with_its_default():
    text = sample()
    config = load_string(text, environ=ENV, source="sample")
    assert config.notes == ()
    assert "None" not in text
    written = dict(re.findall(r"^(\w+) =[ ]?(.*)$", text, re.MULTILINE))
    for option in (*MAIN_OPTIONS.values(), *TARGET_OPTIONS.values()):
        assert written[option.name] == option.default, option.name
    assert set(written) == set(MAIN_OPTIONS) | set(TARGET_OPTIONS)
    # the sample's defaults are the loader's: an empty sample behaves like no option at all
    bare = load_string("[main]\n[master]\n", environ=ENV)
    assert config.master == bare.master and config.max_children == bare.max_children
    assert config.images_dir == bare.images_dir


def test_the_command_prints_the_sample_and_refuses_unknown_commands(capsys):
    out = io.StringIO()
    assert config_command(["sample"], out=out) == 0
    assert out.getvalue() == sample()
    with pytest.raises(SystemExit) as exited:
        config_command(["nonsense"])
    assert exited.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.parametrize("section,value,expected", [
    ("master", "glance-download", "glance-download"),
    ("master", "STREAM", "stream"),
    ("other", "auto", "auto"),
    ("other", None, "auto"),
])
def test_transfer_method(section, value, expected):
    text = "[main]\nmaster_region = S\n[master]\n[other]\ncredential = u,cA==,http://k,t\n"
    if value is not None:
        text = text.replace(f"[{section}]\n", f"[{section}]\ntransfer_method = {value}\n")
    assert load_string(text, environ=ENV).targets[section].transfer_method == expected


@pytest.mark.parametrize("value,message", [
    ("glance-download", "g.conf: [other] transfer_method: glance-download works only for regions of the master target"),
    ("rsync", "g.conf: [other] transfer_method: 'rsync' is not one of auto, stream, glance-download"),
])
def test_bad_transfer_method_is_a_configuration_error(value, message):
    from fiwareglancesync.glancesync.errors import ConfigError

    text = f"[main]\nmaster_region = S\n[other]\ncredential = u,cA==,http://k,t\ntransfer_method = {value}\n"
    with pytest.raises(ConfigError) as raised:
        load_string(text, environ=ENV, source="g.conf")
    assert str(raised.value).startswith(message)


@pytest.mark.parametrize("options,expected", [
    ("", (False, None)),
    ("preserve_ids = true\naccept_conversion = raw\n", (True, "raw")),
    ("preserve_ids = no\naccept_conversion = QCOW2\n", (False, "qcow2")),
])
def test_preserve_ids_and_accept_conversion(options, expected):
    target = load_string(f"[main]\nmaster_region = S\n[master]\n{options}", environ=ENV).master
    assert (target.preserve_ids, target.accept_conversion) == expected


@pytest.mark.parametrize("option,message", [
    ("preserve_ids = maybe", "g.conf: [master] preserve_ids: 'maybe' is not a boolean (use true/false, yes/no, "
                             "on/off or 1/0)"),
    ("accept_conversion = rawish", "g.conf: [master] accept_conversion: 'rawish' is not a Glance disk format (one "
                                   "of ami, ari, aki, vhd, vhdx, vmdk, raw, qcow2, vdi, iso, ploop)"),
    ("relay = sometimes", "g.conf: [master] relay: 'sometimes' is not a boolean (use true/false, yes/no, on/off "
                          "or 1/0)"),
    ("relay_fanout = 0", "g.conf: [master] relay_fanout: must be at least 1, got 0"),
    ("precache = perhaps", "g.conf: [master] precache: 'perhaps' is not a boolean (use true/false, yes/no, on/off "
                           "or 1/0)"),
    ("stores = all, edge1", "g.conf: [master] stores: all stands alone, not in a list of stores"),
])
def test_bad_preserve_ids_or_accept_conversion_is_one_line_and_exit_1(option, message, tmp_path):
    from tests.cli.inprocess import clean_environ, run_sync

    config = tmp_path / "g.conf"
    config.write_text(f"[main]\nmaster_region = S\n[master]\ncredential = u,cA==,http://k,t\n{option}\n")
    result = run_sync(["--show-status"], clean_environ(GLANCESYNC_CONFIG=str(config), GLANCESYNC_USE_MOCK="1"))
    assert result.returncode == 1
    assert result.stderr == f"ERROR:{str(config)[:-len('g.conf')]}{message}\n"
