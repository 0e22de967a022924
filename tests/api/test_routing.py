"""Methods and paths the API does not serve: 405 / 404, always in the JSON envelope."""

import pytest

METHOD_NOT_ALLOWED = [
    ("POST", "/"),
    ("PUT", "/"),
    ("DELETE", "/"),
    ("PUT", "/regions/RegionA"),
    ("PATCH", "/regions/RegionA"),
    ("DELETE", "/regions/RegionA"),
    ("POST", "/regions/RegionA/tasks/some-task"),
    ("PUT", "/regions/RegionA/tasks/some-task"),
    ("PATCH", "/regions/RegionA/tasks/some-task"),
]


@pytest.mark.parametrize("method, path", METHOD_NOT_ALLOWED, ids=[f"{m} {p}" for m, p in METHOD_NOT_ALLOWED])
def test_other_methods_answer_405_bad_method(client, admin_headers, method, path):
    response = client.open(path, method=method, headers=admin_headers)

    assert response.status_code == 405
    assert response.get_json() == {"error": {"message": "Bad method", "code": 405}}
    assert "Allow" in response.headers


@pytest.mark.parametrize("path", ["/regions", "/regions/", "/regions/RegionA/tasks", "/nothing/here"])
def test_unknown_paths_answer_404_in_the_envelope(client, admin_headers, path):
    response = client.get(path, headers=admin_headers)

    assert response.status_code == 404
    assert response.get_json() == {"error": {"message": f"Item not found: {path}", "code": 404}}
