"""Bad clouds.yaml input through sync.py: one ERROR line naming the cloud and the file, exit 1,
no traceback, no secret."""

from __future__ import annotations

import pytest

from tests.cli.inprocess import clean_environ, run_sync

SECRET = "Very-secret-cloud-pw"
CLOUDS = f"""
clouds:
  good:
    auth: {{auth_url: "http://127.0.0.1:9/v3", username: u, password: {SECRET}, project_name: p}}
    region_name: Master
  noauth:
    region_name: Master
"""


@pytest.mark.parametrize("clouds_text,section,expected", [
    (CLOUDS, "cloud = nowhere", "cloud 'nowhere' is not defined in {clouds}"),
    ("clouds: [oops\n", "cloud = good", "cloud 'good': {clouds} is not valid YAML"),
    (CLOUDS, "cloud = noauth", "cloud 'noauth' in {clouds}: its auth section lacks auth_url"),
    (CLOUDS, "cloud = good\nuser = u", "[master] cloud: cannot be combined with user"),
])
def test_bad_cloud_input_is_one_line(tmp_path, clouds_text, section, expected):
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text(clouds_text)
    conf = tmp_path / "glancesync.conf"
    conf.write_text(f"[main]\nmaster_region = Master\n[master]\n{section}\n")
    result = run_sync(["--show-status"], clean_environ(GLANCESYNC_CONFIG=str(conf), OS_CLIENT_CONFIG_FILE=str(clouds),
                                                       OS_CLIENT_SECURE_FILE=str(tmp_path / "none.yaml")))
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1 and expected.format(clouds=clouds) in errors[0], result.stderr
    assert "Traceback" not in result.stderr and SECRET not in result.stdout + result.stderr
