"""clouds.yaml and application credentials against the real lab (README "Credentials and targets").

Application credentials are created through each Keystone's API (``POST
/v3/users/{id}/application_credentials``) and deleted afterwards; clouds.yaml holds one password
cloud (ks1, the master) and one application-credential cloud (ks2, other target), with every
secret in secure.yaml; glancesync.conf says only ``cloud = ...``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.integration.lab.images import same_data
from tests.integration.test_sync_e2e import Cloud

BIN = Path(sys.executable).parent


def create_application_credential(lab, keystone: str) -> dict:
    session = lab.session(keystone, "admin")
    url = lab.keystone(keystone).auth_url
    user_id = session.get_user_id()
    response = session.post(f"{url}/users/{user_id}/application_credentials",
                            json={"application_credential": {"name": f"glancesync-{uuid.uuid4().hex[:8]}"}})
    credential = response.json()["application_credential"]
    credential["_delete"] = lambda: session.delete(f"{url}/users/{user_id}/application_credentials/{credential['id']}")
    return credential


@pytest.fixture
def app_credentials(lab):
    made = {name: create_application_credential(lab, name) for name in ("ks1", "ks2")}
    yield made
    for credential in made.values():
        credential["_delete"]()


@pytest.fixture
def clouds(lab, tmp_path, app_credentials):
    """clouds.yaml + secure.yaml; returns (environment, every secret)."""
    ks1, ks2 = lab.keystone("ks1"), lab.keystone("ks2")
    (tmp_path / "clouds.yaml").write_text(f"""
clouds:
  source:
    auth:
      auth_url: {ks1.auth_url}
      username: {ks1.admin.username}
      project_name: {ks1.admin.project_name}
      user_domain_name: Default
      project_domain_name: Default
    region_name: Master
  source-app:
    auth_type: v3applicationcredential
    auth:
      auth_url: {ks1.auth_url}
      application_credential_id: {app_credentials['ks1']['id']}
    region_name: Master
  target:
    auth_type: v3applicationcredential
    auth:
      auth_url: {ks2.auth_url}
      application_credential_id: {app_credentials['ks2']['id']}
  rejected:
    auth_type: v3applicationcredential
    auth:
      auth_url: {ks2.auth_url}
      application_credential_id: {app_credentials['ks2']['id']}
      application_credential_secret: not-the-secret-0123
""")
    (tmp_path / "secure.yaml").write_text(f"""
clouds:
  source:
    auth:
      password: {ks1.admin.password}
  source-app:
    auth:
      application_credential_secret: {app_credentials['ks1']['secret']}
  target:
    auth:
      application_credential_secret: {app_credentials['ks2']['secret']}
""")
    env = {"OS_CLIENT_CONFIG_FILE": str(tmp_path / "clouds.yaml"),
           "OS_CLIENT_SECURE_FILE": str(tmp_path / "secure.yaml")}
    secrets = [ks1.admin.password, ks2.admin.password, app_credentials["ks1"]["secret"],
               app_credentials["ks2"]["secret"], "not-the-secret-0123"]
    return env, secrets


@pytest.fixture
def cloud(lab, tmp_path):
    world = Cloud(lab, tmp_path)
    condition = f"image.is_public and image.name.startswith('{world.prefix}')"
    world.config.write_text(f"[main]\nimages_dir = {world.images_dir}\nlock_dir = {tmp_path / 'locks'}\n"
                            f"[master]\ncloud = source\nmetadata_condition = {condition}\n"
                            f"[other]\ncloud = target\nmetadata_condition = {condition}\n")
    yield world
    world.cleanup()


def no_secret(secrets, *texts):
    for text in texts:
        for secret in secrets:
            assert secret not in text


def test_sync_with_only_cloud_names_password_and_application_credential(cloud, clouds):
    env, secrets = clouds
    master = cloud.upload("Master", "img", os.urandom(300 * 1024), type="base")

    regions = cloud.sync_py("--show-regions", env=env)
    assert regions.returncode == 0, regions.stderr
    assert regions.stdout.split() == ["RegionA", "other:RegionB"], "master region from the cloud's region_name"

    before = cloud.sync_py("--show-status", "RegionA", "other:RegionB", env=env)
    assert before.returncode == 0, before.stderr
    assert f"pending_upload,RegionA,{cloud.name('img')}" in before.stdout
    assert f"pending_upload,other:RegionB,{cloud.name('img')}" in before.stdout

    synced = cloud.sync_py("RegionA", "other:RegionB", env=env)
    assert synced.returncode == 0, synced.stderr
    for region in ("RegionA", "RegionB"):
        same_data(cloud.only(region, "img"), master)
    after = cloud.status("RegionA", "other:RegionB")
    assert set(after.values()) == {"ok"}

    backup = cloud.sync_py("--make-backup", "RegionA", env=env)
    assert backup.returncode == 0, backup.stderr
    files = [p.read_text() for p in cloud.tmp.glob("backup_glance_*/*.csv")]
    assert files
    no_secret(secrets, regions.stdout + regions.stderr, before.stdout + before.stderr,
              synced.stdout + synced.stderr, backup.stderr, *files)


def test_os_cloud_with_no_glancesync_conf(cloud, clouds, tmp_path):
    env, secrets = clouds
    cloud.upload("Master", "img", b"y" * 1024, type="base")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "GLANCESYNC_"))}
    done = subprocess.run([BIN / "sync.py", "--show-status", "RegionA"], env={**base, **env, "OS_CLOUD": "source-app"},
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"pending_upload,RegionA,{cloud.name('img')}" in done.stdout
    no_secret(secrets, done.stdout, done.stderr)


def test_an_application_credential_keystone_rejects_is_one_line(cloud, clouds):
    env, secrets = clouds
    cloud.config.write_text("[main]\nmaster_region = Master\n[master]\ncloud = source\n[other]\ncloud = rejected\n")
    result = cloud.sync_py("--show-status", "other:RegionB", env=env)
    assert result.returncode == 1
    [line] = [line for line in result.stderr.splitlines() if line.startswith("ERROR:")]
    assert "rejected the credentials of target other (cloud 'rejected' of " in line, line
    assert "Traceback" not in result.stderr
    no_secret(secrets, result.stdout, result.stderr)
