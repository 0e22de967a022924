"""Server settings: the original's files and variables, its error texts, checked at start."""

from pathlib import Path

import pytest

from fiwareglancesync.app import settings
from fiwareglancesync.app.settings import SettingsError, load_settings

ETC = Path(settings.__file__).parent / "etc"


@pytest.fixture
def files(tmp_path):
    cfg = tmp_path / "fiware-glancesync.cfg"
    cfg.write_text("[openstack]\nKEYSTONE_URL: http://keystone:5000\nADM_USER: svc\nADM_PASS: pw\n"
                   "ADM_TENANT_NAME: service\n")
    logging_cfg = tmp_path / "logging.cfg"
    logging_cfg.write_text((ETC / "fiware-glancesync-logging.cfg").read_text())
    (tmp_path / "db").mkdir()
    return {"GLANCESYNC_SETTINGS_FILE": str(cfg), "GLANCESYNC_LOGGING_SETTINGS_FILE": str(logging_cfg),
            "GLANCESYNCAPP_DATABASE_PATH": str(tmp_path / "db")}


def message(environ) -> str:
    with pytest.raises(SettingsError) as caught:
        load_settings(environ)
    return str(caught.value)


def test_original_error_texts_are_kept_to_the_character():
    assert settings.SETTINGS_FILE_MISSING == (
        "\nERROR: There is neither defined GLANCESYNC_SETTINGS_FILE environment variable \n"
        "       pointing to fiware-glancesync.cfg nor /etc/fiware.d/etc/fiware-glancesync.cfg \n"
        "       file. Please correct at least one of them to execute the program.")
    assert settings.LOGGING_FILE_MISSING == (
        "\nERROR: There is neither defined GLANCESYNC_LOGGING_SETTINGS_FILE environment variable pointing\n"
        "       to fiware-glancesync-logging.cfg nor /etc/fiware.d/etc/fiware-glancesync-logging.cfg \n"
        "       file. Please correct at least one of them to execute the program.")
    assert settings.APP_CONFIG_MISSING == (
        "\nERROR: There is not defined GLANCESYNCAPP_CONFIG environment variable \n"
        "       pointing to config.py path file\n"
        "       Please correct at least one of them to execute the program.")
    assert settings.DATABASE_PATH_MISSING == (
        "\nERROR: There is not defined GLANCESYNCAPP_DATABASE_PATH environment variable \n"
        "       pointing to database path file\n"
        "       Please correct at least one of them to execute the program.")


def test_missing_settings_file(files, tmp_path, monkeypatch):
    monkeypatch.setattr(settings, "DEFAULT_SETTINGS_FILE", str(tmp_path / "absent.cfg"))

    assert message(dict(files, GLANCESYNC_SETTINGS_FILE=str(tmp_path / "nope.cfg"))) == settings.SETTINGS_FILE_MISSING
    environ = {k: v for k, v in files.items() if k != "GLANCESYNC_SETTINGS_FILE"}
    assert message(environ) == settings.SETTINGS_FILE_MISSING


def test_settings_file_falls_back_to_etc_fiware_d(files, monkeypatch):
    monkeypatch.setattr(settings, "DEFAULT_SETTINGS_FILE", files["GLANCESYNC_SETTINGS_FILE"])
    environ = {k: v for k, v in files.items() if k != "GLANCESYNC_SETTINGS_FILE"}

    assert load_settings(environ).settings_file == files["GLANCESYNC_SETTINGS_FILE"]


def test_missing_logging_file(files, tmp_path, monkeypatch):
    monkeypatch.setattr(settings, "DEFAULT_LOGGING_FILE", str(tmp_path / "absent.cfg"))
    environ = {k: v for k, v in files.items() if k != "GLANCESYNC_LOGGING_SETTINGS_FILE"}

    assert message(environ) == settings.LOGGING_FILE_MISSING


@pytest.mark.parametrize("value", ["relative/config.py", "/absolute/but/missing/config.py", "/etc/hostname"],
                         ids=["relative", "missing", "not named config.py"])
def test_bad_glancesyncapp_config(files, value):
    assert message(dict(files, GLANCESYNCAPP_CONFIG=value)) == settings.APP_CONFIG_MISSING


def test_glancesyncapp_config_is_executed_as_flask_config(files, tmp_path):
    app_config = tmp_path / "config.py"
    app_config.write_text("SQLALCHEMY_DATABASE_URI = 'sqlite:////tmp/x.db'\nSQLALCHEMY_ECHO = False\n")

    loaded = load_settings(dict(files, GLANCESYNCAPP_CONFIG=str(app_config)))

    assert loaded.database_uri == "sqlite:////tmp/x.db"
    assert loaded.flask_config()["SQLALCHEMY_ECHO"] is False


def test_original_config_py_that_exits_reports_its_message(files, tmp_path):
    app_config = tmp_path / "config.py"
    app_config.write_text("import sys\nsys.exit('\\nERROR: There is not defined GLANCESYNCAPP_DATABASE_PATH')\n")

    assert message(dict(files, GLANCESYNCAPP_CONFIG=str(app_config))) == \
        "\nERROR: There is not defined GLANCESYNCAPP_DATABASE_PATH"


def test_missing_database_path(files):
    environ = {k: v for k, v in files.items() if k != "GLANCESYNCAPP_DATABASE_PATH"}

    assert message(environ) == settings.DATABASE_PATH_MISSING


def test_database_path_must_be_a_directory(files, tmp_path):
    assert "is not a directory" in message(dict(files, GLANCESYNCAPP_DATABASE_PATH=str(tmp_path / "none")))


def test_default_database_is_sqlite_in_the_database_path(files):
    assert load_settings(files).database_uri == f"sqlite:///{files['GLANCESYNCAPP_DATABASE_PATH']}/glancesyncapi.db"


def test_database_url_precedence(files, tmp_path):
    app_config = tmp_path / "config.py"
    app_config.write_text("SQLALCHEMY_DATABASE_URI = 'sqlite:////from/config.py'\n")
    environ = dict(files, GLANCESYNCAPP_CONFIG=str(app_config))
    assert load_settings(environ).database_uri == "sqlite:////from/config.py"

    cfg = Path(files["GLANCESYNC_SETTINGS_FILE"])
    cfg.write_text(cfg.read_text() + "[database]\nURL: postgresql://u:p@db/glancesync\n")
    assert load_settings(environ).database_uri == "postgresql+psycopg://u:p@db/glancesync"

    environ["DATABASE_URL"] = "postgres://u:p@env/glancesync"
    assert load_settings(environ).database_uri == "postgresql+psycopg://u:p@env/glancesync"

    environ["SQLALCHEMY_DATABASE_URI"] = "sqlite:////from/env.db"
    assert load_settings(environ).database_uri == "sqlite:////from/env.db"


def test_database_url_makes_the_database_path_unnecessary(files):
    environ = {k: v for k, v in files.items() if k != "GLANCESYNCAPP_DATABASE_PATH"}
    environ["DATABASE_URL"] = "postgresql+psycopg://u@db/g"

    assert load_settings(environ).database_uri == "postgresql+psycopg://u@db/g"


def test_absent_keys_take_defaults(files):
    loaded = load_settings(files)

    assert (loaded.keystone_api_version, loaded.keystone_auth_url) == ("3", "http://keystone:5000/v3")
    assert (loaded.host, loaded.port, loaded.gunicorn_workers, loaded.task_workers) == ("0.0.0.0", 8080, 4, 2)
    assert (loaded.user_domain_name, loaded.project_domain_name) == ("Default", "Default")
    assert loaded.token_cache_seconds == 300
    assert loaded.gunicorn_pidfile == ""


@pytest.mark.parametrize("url, version_key, expected", [
    ("http://k:5000", "", ("3", "http://k:5000/v3")),
    ("http://k:5000/", "3", ("3", "http://k:5000/v3")),
    ("http://k:5000", "2.0", ("2.0", "http://k:5000/v2.0")),
    ("http://k:5000", "v2.0", ("2.0", "http://k:5000/v2.0")),
    ("http://k:5000/v2.0", "", ("2.0", "http://k:5000/v2.0")),
    ("http://k:5000/v3", "2.0", ("3", "http://k:5000/v3")),
], ids=["default v3", "explicit 3", "2.0", "v2.0", "url says v2.0", "url wins"])
def test_keystone_version(files, url, version_key, expected):
    Path(files["GLANCESYNC_SETTINGS_FILE"]).write_text(
        f"[openstack]\nKEYSTONE_URL: {url}\nKEYSTONE_API_VERSION: {version_key}\nADM_USER: a\nADM_PASS: b\n")

    loaded = load_settings(files)

    assert (loaded.keystone_api_version, loaded.keystone_auth_url) == expected


@pytest.mark.parametrize("paths, url, version_key, expected", [
    ("AUTH_API_V3: identity/v3\n", "http://k:5000", "", ("3", "http://k:5000/identity/v3")),
    ("AUTH_API_V2: /identity/v2.0/\n", "http://k:5000", "2.0", ("2.0", "http://k:5000/identity/v2.0")),
    ("AUTH_API_V3: v3.1\n", "http://k:5000/v3.1", "2.0", ("3", "http://k:5000/v3.1")),
    ("AUTH_API_V2: v2.1\n", "http://k:5000/v2.1/", "3", ("2.0", "http://k:5000/v2.1")),
], ids=["v3 path appended", "v2 path appended", "url ends in the v3 path", "url ends in the v2 path"])
def test_keystone_version_paths_of_the_settings(files, paths, url, version_key, expected):
    Path(files["GLANCESYNC_SETTINGS_FILE"]).write_text(
        f"[openstack]\nKEYSTONE_URL: {url}\nKEYSTONE_API_VERSION: {version_key}\nADM_USER: a\nADM_PASS: b\n{paths}")

    loaded = load_settings(files)

    assert (loaded.keystone_api_version, loaded.keystone_auth_url) == expected


def test_absent_keys_give_the_flask_defaults_of_create_app(files):
    """One table of defaults: a settings file that leaves a key out configures the app as
    create_app's own defaults (settings.DEFAULT_CONFIG) would."""
    config = load_settings(files).flask_config()

    given = {"SQLALCHEMY_DATABASE_URI", "KEYSTONE_AUTH_URL", "KEYSTONE_ADMIN_USER", "KEYSTONE_ADMIN_PASSWORD",
             "KEYSTONE_ADMIN_PROJECT"}  # set by the file of the fixture
    defaults = {key: value for key, value in settings.DEFAULT_CONFIG.items() if key in config and key not in given}
    assert set(defaults) == set(settings.CFG_FLASK_KEYS.values()) - given
    assert {key: config[key] for key in defaults} == defaults


def test_bad_keystone_version_names_the_key(files):
    Path(files["GLANCESYNC_SETTINGS_FILE"]).write_text(
        "[openstack]\nKEYSTONE_URL: http://k\nKEYSTONE_API_VERSION: 4\nADM_USER: a\nADM_PASS: b\n")

    assert "[openstack] KEYSTONE_API_VERSION = '4': use 3 or 2.0" in message(files)


def test_empty_credentials_fall_back_to_os_environment(files):
    Path(files["GLANCESYNC_SETTINGS_FILE"]).write_text("[openstack]\nKEYSTONE_URL:\nADM_USER:\nADM_PASS:\n")
    environ = dict(files, OS_AUTH_URL="http://env:5000/v3", OS_USERNAME="u", OS_PASSWORD="p", OS_PROJECT_NAME="pr")

    loaded = load_settings(environ)

    assert (loaded.keystone_auth_url, loaded.admin_user, loaded.admin_password, loaded.admin_project) == \
        ("http://env:5000/v3", "u", "p", "pr")


def test_missing_service_user_is_an_error_naming_the_key(files):
    Path(files["GLANCESYNC_SETTINGS_FILE"]).write_text("[openstack]\nKEYSTONE_URL: http://k\n")

    assert message(files).endswith("[openstack] ADM_USER is empty and OS_USERNAME is not set; "
                                   "the service needs it to validate tokens")


def test_bad_number_names_section_and_key(files):
    cfg = Path(files["GLANCESYNC_SETTINGS_FILE"])
    cfg.write_text(cfg.read_text() + "[gunicorn]\nWORKERS: many\n")

    assert message(files).endswith("[gunicorn] WORKERS = 'many' is not a number")


def test_password_is_not_in_the_repr(files):
    assert "pw" not in repr(load_settings(files))


def test_shipped_example_settings_load_and_configure_logging(files):
    import subprocess
    import sys

    environ = dict(files, GLANCESYNC_SETTINGS_FILE=str(ETC / "fiware-glancesync.cfg"),
                   GLANCESYNC_LOGGING_SETTINGS_FILE=str(ETC / "fiware-glancesync-logging.cfg"),
                   GLANCESYNCAPP_CONFIG=str(ETC / "config.py"),
                   OS_AUTH_URL="http://127.0.0.1:5000", OS_USERNAME="svc", OS_PASSWORD="pw",
                   OS_PROJECT_NAME="service", PATH="/usr/bin:/bin")
    # In a child process: fileConfig replaces the handlers of this one (pytest's among them).
    code = ("import logging; from fiwareglancesync.app.settings import load_settings, configure_logging; "
            "s = load_settings(); configure_logging(s); "
            "logging.getLogger('glancesync.engine').info('engine line'); "
            "logging.getLogger('glancesync.engine').debug('engine debug'); "
            "logging.getLogger('glancesync.app.services').info('configured'); "
            "print(s.keystone_auth_url, s.admin_user)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environ)

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["http://127.0.0.1:5000/v3", "svc"]
    engine_line, service_line = result.stderr.splitlines()[-2:]
    # One parent, "glancesync", sets the level of both; each keeps its format.
    assert "INFO glancesync-client [" in engine_line and engine_line.endswith("engine line")
    assert "INFO glancesync-api [" in service_line and service_line.endswith("configured")
    assert "engine debug" not in result.stderr


def test_nothing_is_read_at_import():
    import importlib
    import subprocess
    import sys

    code = ("import os, fiwareglancesync.app, fiwareglancesync.run, fiwareglancesync.app.api.regions; "
            "print('ok')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(importlib.import_module(
                                "fiwareglancesync").__file__).parent.parent)})
    assert (result.returncode, result.stdout.strip(), result.stderr) == (0, "ok", "")


def test_request_timeout_is_read_and_must_stay_below_gunicorns_timeout(files):
    cfg = Path(files["GLANCESYNC_SETTINGS_FILE"])
    base = cfg.read_text()
    assert load_settings(files).flask_config()["REQUEST_TIMEOUT"] == 30

    cfg.write_text(base + "[glancesync]\nREQUEST_TIMEOUT: 12\n")
    assert load_settings(files).flask_config()["REQUEST_TIMEOUT"] == 12

    cfg.write_text(base + "[glancesync]\nREQUEST_TIMEOUT: 56\n")
    assert message(files).endswith("[glancesync] REQUEST_TIMEOUT = 56 must be at least 5 s below [gunicorn] "
                                   "TIMEOUT = 60 (gunicorn kills a worker whose request takes longer)")
    cfg.write_text(base + "[glancesync]\nREQUEST_TIMEOUT: 56\n[gunicorn]\nTIMEOUT: 90\n")
    assert load_settings(files).request_timeout == 56


def test_shipped_example_settings_give_get_slash_an_updated_date(files):
    from fiwareglancesync.app import create_app

    environ = dict(files, GLANCESYNC_SETTINGS_FILE=str(ETC / "fiware-glancesync.cfg"),
                   OS_AUTH_URL="http://127.0.0.1:5000", OS_USERNAME="svc", OS_PASSWORD="pw",
                   OS_PROJECT_NAME="service")
    config = load_settings(environ).flask_config()
    config["RECOVER_TASKS_AT_START"] = False

    body = create_app(config).test_client().get("/").get_json()

    assert body["updated"] == "2026-12-02T00:00:00Z"
    assert (config["REQUEST_TIMEOUT"], load_settings(environ).gunicorn_threads) == (30, 8)


def test_session_key_from_the_environment_else_a_file_kept_in_the_database_path(files, tmp_path):
    import os
    import stat

    assert load_settings(dict(files, GLANCESYNC_SECRET_KEY="k1")).flask_config()["SECRET_KEY"] == "k1"

    first = load_settings(files).flask_config()["SECRET_KEY"]
    path = Path(files["GLANCESYNCAPP_DATABASE_PATH"]) / "secret_key"
    assert len(first) == 64 and path.read_text().strip() == first
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_settings(files).flask_config()["SECRET_KEY"] == first  # the same for every worker and start
    assert first not in repr(load_settings(files))

    no_path = dict(files, DATABASE_URL="postgresql://db/x")
    del no_path["GLANCESYNCAPP_DATABASE_PATH"]
    assert "SECRET_KEY" not in load_settings(no_path).flask_config()  # gunicornserver makes one per start
