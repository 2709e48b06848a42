"""The rooms of DESIGN.md: imports point one way, api -> scheduler -> serve_apps/trainers -> platform."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src/annoray"
ALLOWED = {
    "platform": set(),
    "trainers": {"platform"},
    "serve_apps": {"platform", "trainers"},
    "scheduler": {"platform", "trainers", "serve_apps"},
    "api": {"platform", "scheduler"},
}
FORBIDDEN_IN_PLATFORM = ("ray", "fastapi", "starlette", "pyspark", "raydp", "httpx", "uvicorn")


def imports_of(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("room", sorted(ALLOWED))
def test_rooms_import_only_the_rooms_below_them(room: str) -> None:
    for path in (PACKAGE / room).rglob("*.py"):
        for name in imports_of(path):
            parts = name.split(".")
            if parts[0] == "annoray" and len(parts) > 1 and parts[1] in ALLOWED and parts[1] != room:
                assert parts[1] in ALLOWED[room], f"{path.relative_to(PACKAGE)} imports {name}"


def test_platform_knows_nothing_of_ray_http_or_spark() -> None:
    for path in (PACKAGE / "platform").rglob("*.py"):
        for name in imports_of(path):
            assert name.split(".")[0] not in FORBIDDEN_IN_PLATFORM, f"{path.relative_to(PACKAGE)} imports {name}"
