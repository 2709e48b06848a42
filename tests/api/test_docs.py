"""The interactive documentation works offline: every script and stylesheet comes from the package, and the OpenAPI
document declares the bearer scheme so that Swagger UI's Authorize button sends a token."""

import re

import pytest

from ..conftest import Api


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_load_only_what_the_package_ships(api: Api, page: str) -> None:
    html = api.admin.get(page)
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assets = re.findall(r'(?:src|href)="([^"]+)"', html.text) + re.findall(r"url: '([^']+)'", html.text)
    assert assets and not [a for a in assets if "://" in a], f"fetched from elsewhere: {assets}"
    for asset in (a for a in assets if a.startswith("/static/")):
        got = api.admin.get(asset)
        assert got.status_code == 200 and len(got.content) > 100, asset
    assert api.admin.get("/static/vendor/htmx-2.0.11/LICENSE").status_code == 200, "each vendored script keeps its licence"


def test_the_openapi_document_declares_the_bearer_token(api: Api) -> None:
    spec = api.admin.get("/openapi.json").json()
    from annoray.api.deps import BEARER

    assert spec["components"]["securitySchemes"]["HTTPBearer"] == {"type": "http", "scheme": "bearer", "description": BEARER.model.description}
    assert "admin.token" in BEARER.model.description, "the document says where a token comes from"
    assert spec["paths"]["/api/projects"]["get"]["security"] == [{"HTTPBearer": []}]
    assert "security" not in spec["paths"]["/api/health"]["get"], "health needs no token"
