"""The docker/ files, linted (Docker itself does not run on the CI machines): hadolint for the
Dockerfiles, shellcheck for the entry point, the Compose specification's schema for compose."""

import subprocess
from pathlib import Path

import pytest

from .processes import bin_path

DOCKER = Path(__file__).resolve().parents[2] / "docker"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "Dockerfile.cli"])
def test_dockerfile_passes_hadolint(dockerfile):
    result = run(bin_path("hadolint"), "--no-color", str(DOCKER / dockerfile))

    assert (result.returncode, result.stdout + result.stderr) == (0, "")


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "Dockerfile.cli"])
def test_images_run_as_a_numeric_non_root_user(dockerfile):
    users = [line.split()[1] for line in (DOCKER / dockerfile).read_text().splitlines() if line.startswith("USER ")]

    assert users == ["10001:10001"]


def test_entrypoint_passes_shellcheck():
    result = run(bin_path("shellcheck"), str(DOCKER / "entrypoint.sh"))

    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_compose_file_matches_the_compose_specification():
    result = run(bin_path("check-jsonschema"), "--builtin-schema", "vendor.compose-spec",
                 str(DOCKER / "docker-compose.yml"))

    assert result.returncode == 0, result.stdout + result.stderr


def test_service_image_upgrades_the_database_then_execs_the_server():
    entrypoint = (DOCKER / "entrypoint.sh").read_text()

    assert entrypoint.index("glancesync-server db upgrade") < entrypoint.index('exec glancesync-server "$@"')
    assert 'CMD ["gunicornserver"]' in (DOCKER / "Dockerfile").read_text()
