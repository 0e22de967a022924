"""GET / : service information, no token needed."""

from fiwareglancesync import __version__


def test_info_needs_no_token_and_lists_the_original_keys_in_order(client):
    response = client.get("/")

    assert response.status_code == 200
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert list(body) == ["id", "owner", "status", "version", "updated", "runningfrom", "href"]
    assert body["id"] == "v" + __version__
    assert body["version"] == __version__
    assert body["status"] == "SUPPORTED"
    assert body["href"] == "http://docs.glancesync.apiary.io/#"


def test_info_values_come_from_the_configuration(make_app):
    app = make_app(INFO_VERSION="1.7.0", INFO_OWNER="Telefonica I+D", INFO_UPDATED="2015-12-12T13:16:21Z")

    body = app.test_client().get("/").get_json()

    assert body["id"] == "v1.7.0"
    assert body["owner"] == "Telefonica I+D"
    assert body["updated"] == "2015-12-12T13:16:21Z"
