"""The interactive API documentation, Swagger UI at ``/docs`` and ReDoc at ``/redoc``, from scripts shipped in the package
(``api/static/vendor``, each with its licence): nothing is fetched from a CDN, so they work on a machine offline."""

from fastapi import APIRouter
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse

router = APIRouter(include_in_schema=False)

VENDOR = "/static/vendor"
SWAGGER_UI = f"{VENDOR}/swagger-ui-5.35.0"
REDOC = f"{VENDOR}/redoc-2.5.4"


@router.get("/docs", response_class=HTMLResponse)
def swagger_ui() -> HTMLResponse:
    """Swagger UI; its Authorize button takes an API token (the OpenAPI document declares the bearer scheme)."""
    return get_swagger_ui_html(openapi_url="/openapi.json", title="annoray API", swagger_js_url=f"{SWAGGER_UI}/swagger-ui-bundle.js",
                               swagger_css_url=f"{SWAGGER_UI}/swagger-ui.css", swagger_favicon_url=f"{SWAGGER_UI}/favicon-32x32.png",
                               swagger_ui_parameters={"validatorUrl": None, "persistAuthorization": False})


@router.get("/redoc", response_class=HTMLResponse)
def redoc() -> HTMLResponse:
    return get_redoc_html(openapi_url="/openapi.json", title="annoray API", redoc_js_url=f"{REDOC}/redoc.standalone.js",
                          redoc_favicon_url=f"{SWAGGER_UI}/favicon-32x32.png", with_google_fonts=False)
