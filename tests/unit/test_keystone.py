"""keystone.py: which identity API a credential speaks (api_version), at which URL
(versioned_url, with or without an explicit ``path``), and the keystoneauth1 password plugin and
session built for it (v2.0 and v3, project by name or by id)."""

import pytest
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v2 as ks_v2
from keystoneauth1.identity import v3 as ks_v3

from fiwareglancesync.glancesync import keystone


@pytest.mark.parametrize("url, requested, expected", [
    ("http://ks:5000", None, "3"),
    ("http://ks:5000", "", "3"),
    ("http://ks:5000/", "3", "3"),
    ("http://ks:5000", "v3", "3"),
    ("http://ks:5000", "2", "2.0"),
    ("http://ks:5000", "2.0", "2.0"),
    ("http://ks:5000", " V2.0 ", "2.0"),
    ("http://ks:5000/v2.0", None, "2.0"),     # a version at the end of the URL wins ...
    ("http://ks:5000/v2.0/", "3", "2.0"),
    ("http://ks:5000/v3", "2.0", "3"),        # ... both ways
    ("https://cloud/identity", None, "3"),
    ("https://cloud/v2.0/identity", None, "3"),  # only a version at the end counts
])
def test_api_version(url, requested, expected):
    assert keystone.api_version(url, requested) == expected


@pytest.mark.parametrize("requested", ["4", "v1", "latest"])
def test_api_version_refuses_other_versions(requested):
    with pytest.raises(ValueError, match=f"unknown Keystone API version '{requested}': use 3 or 2.0"):
        keystone.api_version("http://ks:5000", requested)


@pytest.mark.parametrize("url, version, path, expected", [
    ("http://ks:5000", "3", None, "http://ks:5000/v3"),
    ("http://ks:5000/", "2.0", None, "http://ks:5000/v2.0"),
    ("http://ks:5000//", "3", None, "http://ks:5000/v3"),
    ("http://ks:5000/v3/", "3", None, "http://ks:5000/v3"),
    ("http://ks:5000/v2.0", "2.0", None, "http://ks:5000/v2.0"),
    ("http://ks:5000/v2.0", "3", None, "http://ks:5000/v2.0"),  # a versioned URL is left as it is
    ("https://cloud/identity", "3", None, "https://cloud/identity/v3"),
    ("http://ks:5000", "3", "", "http://ks:5000/v3"),          # an empty path is no path
    ("http://ks:5000", "3", "identity/v3", "http://ks:5000/identity/v3"),
    ("http://ks:5000", "3", "/identity/v3/", "http://ks:5000/identity/v3"),
    ("http://ks:5000/identity/v3", "3", "identity/v3", "http://ks:5000/identity/v3"),
    ("http://ks:5000/keystone", "3", "keystone", "http://ks:5000/keystone"),  # already ends in the path
    ("http://ks:5000/v3", "3", "identity", "http://ks:5000/v3"),
])
def test_versioned_url(url, version, path, expected):
    assert keystone.versioned_url(url, version, path) == expected


V3_URL, V2_URL = "http://ks:5000/v3", "http://ks:5000/v2.0"


@pytest.mark.parametrize("version, scope, expected", [
    # v3: the project by name (in its domain), else by id, else unscoped
    ("3", dict(project_name="demo"),
     dict(project_name="demo", project_id=None, project_domain_name="Default")),
    ("3", dict(project_name="demo", project_domain_name="projects"),
     dict(project_name="demo", project_id=None, project_domain_name="projects")),
    ("3", dict(project_name="demo", project_id="p-1"),
     dict(project_name="demo", project_id=None, project_domain_name="Default")),
    ("3", dict(project_id="p-1"),
     dict(project_name=None, project_id="p-1", project_domain_name=None)),
    ("3", dict(project_name="", project_id="p-1"),
     dict(project_name=None, project_id="p-1", project_domain_name=None)),
    ("3", dict(),
     dict(project_name=None, project_id=None, project_domain_name=None)),
    # v2.0: the tenant by name, else by id, else unscoped
    ("2.0", dict(project_name="demo"), dict(tenant_name="demo", tenant_id=None)),
    ("2.0", dict(project_name="demo", project_id="p-1"), dict(tenant_name="demo", tenant_id=None)),
    ("2.0", dict(project_id="p-1"), dict(tenant_name=None, tenant_id="p-1")),
    ("2.0", dict(project_name="", project_id=""), dict(tenant_name=None, tenant_id=None)),
], ids=lambda value: value if isinstance(value, str) else None)
def test_password_plugin(version, scope, expected):
    url = V3_URL if version == "3" else V2_URL
    plugin = keystone.password_plugin(auth_url=url, version=version, username="admin", password="s3cret",
                                      **scope)
    assert plugin.auth_url == url
    if version == "3":
        assert isinstance(plugin, ks_v3.Password)
        (method,) = plugin.auth_methods
        assert (method.username, method.password, method.user_domain_name) == ("admin", "s3cret", "Default")
        assert {key: getattr(plugin, key) for key in expected} == expected
    else:
        assert isinstance(plugin, ks_v2.Password)
        assert (plugin.username, plugin.password) == ("admin", "s3cret")
        assert {key: getattr(plugin, key) for key in expected} == expected


def test_password_plugin_v3_user_domain():
    plugin = keystone.password_plugin(auth_url=V3_URL, version=keystone.V3, username="u", password="p",
                                      project_name="demo", user_domain_name="users")
    assert plugin.auth_methods[0].user_domain_name == "users"


def test_session_wraps_the_plugin_without_a_request():
    plugin = keystone.password_plugin(auth_url=V3_URL, version=keystone.V3, username="u", password="p")
    session = keystone.session(plugin, timeout=12.5, verify="/etc/ca.pem")
    assert isinstance(session, ks_session.Session)
    assert (session.auth, session.timeout, session.verify) == (plugin, 12.5, "/etc/ca.pem")
    assert session.app_name == "glancesync"
    assert plugin.auth_ref is None  # nothing was asked of Keystone yet
