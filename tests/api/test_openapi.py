"""The routes of shared/API.md that exist so far are in the app's OpenAPI document, with their verbs."""

import pytest

from annoray.api.app import create_app
from annoray.platform.settings import Settings

ROUTES = [
    ("get", "/api/health"),
    ("post", "/api/users"),
    ("post", "/api/projects"),
    ("get", "/api/projects/{pid}"),
    ("put", "/api/projects/{pid}/labeling-config"),
    ("post", "/api/projects/{pid}/members"),
    ("post", "/api/projects/{pid}/tasks/import"),
    ("get", "/api/projects/{pid}/tasks"),
    ("post", "/api/projects/{pid}/tasks/{tid}/completions"),
    ("post", "/api/projects/{pid}/completions/{cid}/review"),
    ("get", "/api/projects/{pid}/export"),
    ("get", "/api/projects/{pid}/tasks/{tid}/predictions"),
    ("post", "/api/projects/{pid}/tasks/{tid}/completions/from-prediction/{prid}"),
    ("post", "/api/projects/{pid}/trainings"),
    ("get", "/api/projects/{pid}/trainings"),
    ("get", "/api/trainings/{jid}"),
    ("get", "/api/trainings/{jid}/log"),
    ("post", "/api/trainings/{jid}/cancel"),
    ("get", "/api/models"),
    ("get", "/api/models/{name}"),
    ("get", "/api/cluster"),
    ("get", "/api/queue"),
    ("post", "/api/projects/{pid}/files"),
    ("get", "/api/files/{fid}"),
    ("get", "/api/files/{fid}/pages/{n}"),
    ("patch", "/api/users/{username}"),
    ("post", "/api/users/me/token"),
    ("post", "/api/teams"),
    ("get", "/api/teams"),
    ("patch", "/api/teams/{name}"),
    ("delete", "/api/teams/{name}"),
    ("patch", "/api/projects/{pid}"),
]


@pytest.fixture(scope="module")
def openapi(tmp_path_factory) -> dict:
    return create_app(Settings(home=tmp_path_factory.mktemp("home"))).openapi()


@pytest.mark.parametrize("method,path", ROUTES)
def test_api_md_route_is_documented(openapi: dict, method: str, path: str) -> None:
    assert method in openapi["paths"].get(path, {}), f"{method.upper()} {path} missing from OpenAPI"


def test_live_openapi_matches_the_app(api) -> None:
    import httpx

    served = httpx.get(f"{api.url}/openapi.json").json()
    assert set(served["paths"]) >= {p for _, p in ROUTES}
