"""glancesync.conf loading: options, defaults, credentials, environment, overrides, errors."""

from __future__ import annotations

import base64

import pytest

from fiwareglancesync.glancesync import config_file
from fiwareglancesync.glancesync.config import load, load_string, parse_overrides
from fiwareglancesync.glancesync.errors import ConfigError

B64 = base64.b64encode(b"s3cret").decode()

FULL = f"""
[main]
master_region = Valladolid
preferable_order = Trento, other:Madrid
max_children = 3
images_dir = /srv/images

[DEFAULT]
metadata_set = nid, type
metadata_condition = image.is_public and\\
  image.user_properties.get('type', None) == 'baseimages'
list_images_timeout = 60

[master]
credential = admin,{B64},\\
  http://keystone:5000/v3,demo
forcesyncs = 111, 222
replace = c1, any
rename = c2
dontupdate = c3
ignore_regions = Spain2
obsolete_syncprops = sdc_aware

[other]
user = bob
password = plain%%pass
keystone_url = http://other:5000/v2.0
tenant = t2
only_tenant_images = no
support_obsolete_images = False
metadata_condition =
user_domain_name = Users
"""


def test_full_file():
    cfg = load_string(FULL, environ={})
    assert cfg.master_region == "Valladolid"
    assert cfg.preferable_order == ("Trento", "other:Madrid")
    assert cfg.max_children == 3 and cfg.images_dir == "/srv/images"
    master, other = cfg.targets["master"], cfg.targets["other"]
    assert (master.user, master.password, master.keystone_url, master.tenant) == ("admin", "s3cret", "http://keystone:5000/v3", "demo")
    assert master.forcesyncs == {"111", "222"} and master.replace == {"c1", "any"}
    assert master.rename == {"c2"} and master.dontupdate == {"c3"} and master.ignore_regions == {"Spain2"}
    assert master.metadata_set == {"nid", "type"} and master.list_images_timeout == 60
    assert master.obsolete_syncprops == {"sdc_aware"}
    assert master.metadata_condition is not None
    assert master.keystone_version == "3"
    assert (other.user, other.password, other.tenant) == ("bob", "plain%pass", "t2")
    assert other.only_tenant_images is False and other.support_obsolete_images is False
    assert other.metadata_condition is None, "an empty option overrides DEFAULT"
    assert other.keystone_version == "2.0"
    assert other.user_domain_name == "Users" and other.project_domain_name == "Default"


def test_defaults_for_every_target_including_implicit_master():
    env = {"OS_REGION_NAME": "Spain", "OS_USERNAME": "u", "OS_PASSWORD": "p", "OS_AUTH_URL": "http://k:5000",
           "OS_PROJECT_NAME": "proj", "OS_USER_DOMAIN_NAME": "D1"}
    cfg = load_string("", environ=env)
    master = cfg.master
    assert cfg.master_region == "Spain" and cfg.max_children == 1 and cfg.images_dir == "/var/lib/glance/images"
    assert (master.user, master.password, master.keystone_url, master.tenant) == ("u", "p", "http://k:5000", "proj")
    assert master.support_obsolete_images is True and master.only_tenant_images is True
    assert master.list_images_timeout == 30 and master.user_domain_name == "D1"
    assert master.keystone_version == "3", "Keystone v3 is the default"


def test_each_missing_master_field_comes_from_the_environment():
    text = "[main]\nmaster_region = R\n[master]\nuser = fromfile\n"
    cfg = load_string(text, environ={"OS_USERNAME": "ignored", "OS_PASSWORD": "pw", "OS_AUTH_URL": "http://k",
                                     "OS_TENANT_NAME": "t"})
    assert (cfg.master.user, cfg.master.password, cfg.master.tenant) == ("fromfile", "pw", "t")


@pytest.mark.parametrize("missing,message", [
    ("OS_USERNAME", "A username for master target must be provided"),
    ("OS_PASSWORD", "A password for master target must be provided"),
    ("OS_AUTH_URL", "A keystone url for master target must be provided"),
    ("OS_TENANT_NAME", "A tenant name for master target must be provided"),
])
def test_missing_master_credential(missing, message):
    env = {"OS_REGION_NAME": "R", "OS_USERNAME": "u", "OS_PASSWORD": "p", "OS_AUTH_URL": "http://k", "OS_TENANT_NAME": "t"}
    del env[missing]
    with pytest.raises(ConfigError, match=message):
        load_string("", environ=env)


def test_missing_master_region_keeps_the_original_text():
    with pytest.raises(ConfigError, match="A master region must be set in the configuration or OS_REGION_NAME must be defined"):
        load_string(f"[master]\ncredential = a,{B64},http://k,t\n", environ={})


@pytest.mark.parametrize("use_v3,url,version", [
    (None, "http://k:5000", "3"), (None, "http://k:5000/v2.0", "2.0"), (None, "http://k/v3/", "3"),
    ("False", "http://k:5000", "2.0"), ("False", "http://k:5000/v3", "3"), ("True", "http://k/v2.0", "2.0"),
])
def test_keystone_version(use_v3, url, version):
    option = f"use_keystone_v3 = {use_v3}\n" if use_v3 else ""
    cfg = load_string(f"[main]\nmaster_region=R\n[master]\nuser=u\npassword=p\ntenant=t\nkeystone_url={url}\n{option}", environ={})
    assert cfg.master.keystone_version == version


@pytest.mark.parametrize("text,fragment", [
    (f"[main]\nmaster_region=R\n[master]\ncredential = a,{B64},http://k,t\nonly_tenant_images = maybe\n",
     "[master] only_tenant_images: 'maybe' is not a boolean"),
    ("[main]\nmaster_region=R\n[master]\ncredential = a,not*base64,http://k,t\n",
     "[master] credential: the password (second field) is not valid base64"),
    (f"[main]\nmaster_region=R\n[master]\ncredential = a,{B64},http://k\n",
     "[master] credential: expected 4 comma-separated fields"),
    (f"[main]\nmaster_region=R\n[master]\ncredential = a,{B64},http://k,t\n[other]\nuser = x\n",
     "[other] A credential parameter is mandatory for each target"),
    (f"[main]\nmaster_region=R\n[master]\ncredential = a,{B64},http://k,t\nmetadata_condition = __import__('os').system('id')\n",
     "[master] metadata_condition of target master"),
    (f"[main]\nmaster_region=R\n[master]\ncredential = a,{B64},http://k,t\nlist_images_timeout = soon\n",
     "list_images_timeout: 'soon' is not an integer"),
    (f"[main]\nmaster_region=R\n[master]\ncredential = a,{B64},http://k,t\npassword = 50%off\n", "write a literal % as %%"),
    ("[main\nmaster_region=R\n", "glancesync.conf"),
])
def test_errors_name_file_section_option(text, fragment):
    with pytest.raises(ConfigError) as raised:
        load_string(text, environ={}, source="/etc/glancesync.conf")
    message = str(raised.value)
    assert message.startswith("/etc/glancesync.conf"), message
    assert fragment in message
    assert "s3cret" not in message


def test_max_children_must_be_positive():
    with pytest.raises(ConfigError, match=r"\[main\] max_children: must be at least 1"):
        load_string(f"[main]\nmaster_region=R\nmax_children=0\n[master]\ncredential = a,{B64},http://k,t\n", environ={})


def test_overrides():
    assert parse_overrides(["a=b=c", " main.master_region =X"]) == {"a": "b=c", "main.master_region": "X"}
    with pytest.raises(ConfigError, match="must have the format key=value"):
        parse_overrides(["novalue"])
    base = f"[main]\nmaster_region=R\n[master]\ncredential = a,{B64},http://k,t\n"
    cfg = load_string(base, overrides={"main.master_region": "Other", "metadata_set": "x, y",
                                       "extra.credential": f"b,{B64},http://k2,t2",
                                       "master.metadata_condition": "image.name == 'a=b'"}, environ={})
    assert cfg.master_region == "Other"
    assert cfg.master.metadata_set == {"x", "y"}, "a bare key goes to DEFAULT"
    assert cfg.targets["extra"].user == "b", "section.option creates a missing section"
    assert cfg.master.metadata_condition.text == "image.name == 'a=b'"
    with pytest.raises(ConfigError, match="keys are 'option' or 'section.option'"):
        load_string(base, overrides={"a.b.c": "1"}, environ={})


def test_main_overrides_work_without_a_file():
    env = {"OS_USERNAME": "u", "OS_PASSWORD": "p", "OS_AUTH_URL": "http://k", "OS_TENANT_NAME": "t"}
    cfg = load_string("", overrides={"main.master_region": "Z"}, environ=env)
    assert cfg.master_region == "Z"


def test_search_order(tmp_path, monkeypatch):
    first, second = tmp_path / "env.conf", tmp_path / "arg.conf"
    first.write_text(f"[main]\nmaster_region=FromEnv\n[master]\ncredential = a,{B64},http://k,t\n")
    second.write_text(f"[main]\nmaster_region=FromArg\n[master]\ncredential = a,{B64},http://k,t\n")
    assert load(str(second), environ={"GLANCESYNC_CONFIG": str(first)}).master_region == "FromEnv"
    assert load(str(second), environ={}).master_region == "FromArg"
    monkeypatch.setattr(config_file, "DEFAULT_CONFIG_PATHS", (str(tmp_path / "missing.conf"), str(second)))
    assert load(None, environ={}).master_region == "FromArg"
    with pytest.raises(ConfigError, match="GLANCESYNC_CONFIG names .*nothere.conf, which is not a readable file"):
        load(None, environ={"GLANCESYNC_CONFIG": str(tmp_path / "nothere.conf")})


def test_password_is_not_in_repr():
    cfg = load_string(FULL, environ={})
    assert "s3cret" not in repr(cfg)
