"""clouds.yaml / secure.yaml / OS_CLOUD / OS_AUTH_TYPE credentials, read by openstacksdk's loader."""

from __future__ import annotations

import pytest
from keystoneauth1.identity.generic import password as generic_password
from keystoneauth1.identity.v3 import application_credential

from fiwareglancesync.glancesync import keystone
from fiwareglancesync.glancesync.config import load_string
from fiwareglancesync.glancesync.engine import GlanceSync
from fiwareglancesync.glancesync.errors import ConfigError

CLOUDS = """
clouds:
  source:
    auth:
      auth_url: http://ks1.example:5000/v3
      username: admin
      project_name: admin
      user_domain_name: Default
      project_domain_name: Default
    region_name: Master
  target:
    auth_type: v3applicationcredential
    auth:
      auth_url: http://ks2.example:5000/v3
      application_credential_id: 0123abcd
    regions: [RegionB, RegionC]
  noauth:
    region_name: X
"""
SECURE = """
clouds:
  source:
    auth:
      password: Pw-from-secure-1
  target:
    auth:
      application_credential_secret: AppCred-secret-2
"""
SECRETS = ("Pw-from-secure-1", "AppCred-secret-2")


@pytest.fixture
def env(tmp_path):
    (tmp_path / "clouds.yaml").write_text(CLOUDS)
    (tmp_path / "secure.yaml").write_text(SECURE)
    return {"OS_CLIENT_CONFIG_FILE": str(tmp_path / "clouds.yaml"),
            "OS_CLIENT_SECURE_FILE": str(tmp_path / "secure.yaml")}


def test_targets_that_only_name_a_cloud(env):
    config = load_string("[master]\ncloud = source\n[other]\ncloud = target\n", environ=env, source="g.conf")
    assert config.master_region == "Master", "the master cloud's region_name"
    master, other = config.targets["master"], config.targets["other"]
    assert isinstance(keystone.target_plugin(master), generic_password.Password)
    assert isinstance(keystone.target_plugin(other), application_credential.ApplicationCredential)
    assert master.cloud.region_name == "Master" and other.cloud.regions == ("RegionB", "RegionC")
    assert keystone.target_secrets(master) == ["Pw-from-secure-1"], "secure.yaml merged"
    assert keystone.target_secrets(other) == ["AppCred-secret-2"]
    assert all(secret not in repr(config) for secret in SECRETS)


def test_os_cloud_alone_is_a_configuration(env):
    config = load_string("", environ={**env, "OS_CLOUD": "source"})
    assert config.master.cloud.name == "source" and config.master_region == "Master"


def test_explicit_master_options_win_over_os_cloud(env):
    config = load_string("[main]\nmaster_region = M\n[master]\ncredential = u,cA==,http://k/v3,t\n",
                         environ={**env, "OS_CLOUD": "source"})
    assert config.master.cloud is None and config.master.user == "u"


def test_application_credential_from_the_environment():
    environ = {"OS_AUTH_TYPE": "v3applicationcredential", "OS_AUTH_URL": "http://ks.example:5000/v3",
               "OS_APPLICATION_CREDENTIAL_ID": "abc", "OS_APPLICATION_CREDENTIAL_SECRET": "Env-secret-3",
               "OS_REGION_NAME": "Master"}
    config = load_string("", environ=environ)
    assert isinstance(keystone.target_plugin(config.master), application_credential.ApplicationCredential)
    assert keystone.target_secrets(config.master) == ["Env-secret-3"]


def test_a_cloud_regions_list_limits_the_targets_regions(env):
    class Facade:
        def get_regions(self):
            return ["RegionA", "RegionB", "RegionC"]

    config = load_string("[master]\ncloud = source\n[other]\ncloud = target\n", environ=env)
    engine = GlanceSync(config, lambda target: Facade())
    assert engine.get_regions("other") == ["other:RegionB", "other:RegionC"]
    assert engine.get_regions("master") == ["RegionA", "RegionB", "RegionC"]


@pytest.mark.parametrize("text,extra_env,expected", [
    ("[master]\ncloud = nowhere\n", {}, "g.conf: [master] cloud: cloud 'nowhere' is not defined in "),
    ("[main]\nmaster_region = M\n[master]\ncloud = noauth\n", {}, "g.conf: [master] cloud: cloud 'noauth' in "),
    ("[master]\ncloud = source\nuser = admin\n", {},
     "g.conf: [master] cloud: cannot be combined with user (the cloud's clouds.yaml entry holds the whole credential)"),
    ("[master]\ncloud = source\n", {"broken": True}, "g.conf: [master] cloud: cloud 'source': "),
    ("[main]\nmaster_region = M\n", {"OS_AUTH_TYPE": "v3applicationcredential", "OS_AUTH_URL": "http://k/v3"},
     "g.conf: [master]: OS_AUTH_TYPE=v3applicationcredential: "),
])
def test_bad_cloud_configuration_is_one_clear_line(env, tmp_path, text, extra_env, expected):
    environ = dict(env)
    if extra_env.pop("broken", False):
        (tmp_path / "clouds.yaml").write_text("clouds: [unclosed\n  source: {\n")
    environ.update(extra_env)
    with pytest.raises(ConfigError) as raised:
        load_string(text, environ=environ, source="g.conf")
    message = str(raised.value)
    assert message.startswith(expected), message
    assert "\n" not in message and all(secret not in message for secret in SECRETS)


def test_not_yaml_names_the_file(env, tmp_path):
    (tmp_path / "clouds.yaml").write_text("clouds: [unclosed\n")
    with pytest.raises(ConfigError, match=r"clouds.yaml is not valid YAML"):
        load_string("[master]\ncloud = source\n", environ=env, source="g.conf")
