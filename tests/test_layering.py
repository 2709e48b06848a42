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


def ray_options_used(path: Path) -> list[str]:
    """``ray.remote``, ``serve.deployment`` and ``.options(...)`` on anything but a SQLAlchemy query, in one module."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and (
                (node.value.id, node.attr) in {("ray", "remote"), ("serve", "deployment")}):
            found.append(f"{node.value.id}.{node.attr}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "options" and not (
                node.args and isinstance(node.args[0], ast.Call) and getattr(node.args[0].func, "id", "") == "load_only"):
            found.append(".options(")
    return found


def test_ray_options_are_applied_only_in_the_scheduler_factory() -> None:
    factory = PACKAGE / "scheduler/factory.py"
    assert ray_options_used(factory), "the factory is where actors, tasks and deployments get their options"
    for path in PACKAGE.rglob("*.py"):
        if path != factory:
            assert not ray_options_used(path), f"{path.relative_to(PACKAGE)} applies Ray options: {ray_options_used(path)}"


IMPORT_EVERYTHING = """
import importlib, os, pkgutil, sys, threading
before = {t.name for t in threading.enumerate()}
import annoray
for module in pkgutil.walk_packages(annoray.__path__, "annoray."):
    if not module.name.endswith("__main__"):
        importlib.import_module(module.name)
import ray
started = {t.name for t in threading.enumerate()} - before
print(ray.is_initialized(), sorted(started), sorted(os.listdir(".")))
"""


def test_importing_every_module_starts_nothing_and_reads_no_home(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "HOME" and not k.startswith("ANNORAY_")}
    done = subprocess.run([sys.executable, "-c", IMPORT_EVERYTHING], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=240)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[0] == "False [] []", done.stdout


PLATFORM_ALLOWED = {  # inside the platform, arrows point one way too: models -> labeling, access -> store -> the top
    "store": set(),
    "labeling": {"store"},
    "access": {"store"},
    "models": {"store", "labeling", "access"},
    "services": {"store", "labeling", "access", "models"},
}


@pytest.mark.parametrize("part", [*sorted(PLATFORM_ALLOWED), "top"])
def test_the_platform_parts_import_only_the_parts_below_them(part: str) -> None:
    folder = PACKAGE / "platform"
    paths = [p for p in folder.glob("*.py") if p.name != "__init__.py"] if part == "top" else list((folder / part).rglob("*.py"))
    allowed = set() if part == "top" else PLATFORM_ALLOWED[part]
    for path in paths:
        for name in imports_of(path):
            parts = name.split(".")
            if parts[:2] == ["annoray", "platform"] and len(parts) > 2 and parts[2] in PLATFORM_ALLOWED and parts[2] != part:
                assert parts[2] in allowed, f"{path.relative_to(PACKAGE)} imports {name}"


MAX_LINES = 400


def test_no_module_is_longer_than_a_reader_holds() -> None:
    """A module over 400 lines holds more than one concern: split it by part (as ``api/schemas/``, ``store/tables/``)."""
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}, long


def module_of(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_no_import_circle_anywhere_counting_imports_inside_functions() -> None:
    """Every ``import`` and ``from ... import`` of annoray's, at the top or inside a function, is an arrow from one
    module to another (``from a import b`` to ``a.b`` when b is a module); no module reaches itself along the arrows."""
    modules = {module_of(p): p for p in PACKAGE.rglob("*.py")}
    arrows: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module for a in node.names}
            elif isinstance(node, ast.Import):
                targets |= {a.name for a in node.names}
        arrows[name] = {t for t in targets if t in modules and t != name}

    circles = []
    state: dict[str, int] = {}  # 1: on the path being walked, 2: done

    def walk(name: str, path: list[str]) -> None:
        state[name] = 1
        for target in sorted(arrows[name]):
            if state.get(target) == 1:
                circles.append(path[path.index(target):] + [target])
            elif target not in state:
                walk(target, path + [target])
        state[name] = 2

    for name in sorted(modules):
        if name not in state:
            walk(name, [name])
    assert circles == [], "\n".join(" -> ".join(c) for c in circles)


def _api_sources() -> dict[str, str]:
    return {str(p.relative_to(PACKAGE)): p.read_text() for p in (PACKAGE / "api").rglob("*.py")}


def test_the_api_sees_one_face_of_the_scheduler() -> None:
    """The API (routes, pages, CLI) imports the names ``annoray.scheduler`` exports, never its modules."""
    reaching = {path: sorted(n for n in imports_of(PACKAGE / path) if n.startswith("annoray.scheduler."))
                for path in _api_sources()}
    assert {path: names for path, names in reaching.items() if names} == {}


def test_no_request_holds_a_transaction_of_its_own_making() -> None:
    """Writes are short transactions of the service functions (``platform/services``, the scheduler's request
    services): the API never opens a transaction, commits, rolls back or detaches by hand, and no middleware queues
    writers."""
    found = {path: [w for w in (".begin(", ".commit(", ".rollback(", ".expunge(", "OneWriterAtATime", "write_gate") if w in text]
             for path, text in _api_sources().items()}
    assert {path: words for path, words in found.items() if words} == {}


def test_a_page_never_calls_a_route_function() -> None:
    """Dashboard pages call the service functions and the routes' plain helpers, never an endpoint (which would run a
    route for its checks and commit on the page's behalf)."""
    import importlib

    endpoints = {}
    for path in (PACKAGE / "api/routes").glob("*.py"):
        module = importlib.import_module(module_of(path))
        if hasattr(module, "router"):
            endpoints[path.stem] = {route.endpoint.__name__ for route in module.router.routes}
    calls = []
    for path in (PACKAGE / "api/web").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in endpoints
                    and node.attr in endpoints[node.value.id]):
                calls.append(f"{path.name}: {node.value.id}.{node.attr}")
    assert calls == []


def _blocking(call: ast.Call) -> bool:
    """A call that waits on Ray or the clock: ``ray.get``/``ray.wait`` (but a poll, ``timeout=0``), a sleep, waiting for
    a runner to go, or ending a run with ``abort=True`` (which waits up to 30 s for its controller)."""
    func = call.func
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "ray" and func.attr in ("get", "wait"):
        return not any(k.arg == "timeout" and isinstance(k.value, ast.Constant) and k.value.value == 0 for k in call.keywords)
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    return name in ("sleep", "_wait_until_gone") or any(
        k.arg == "abort" and isinstance(k.value, ast.Constant) and k.value.value is True for k in call.keywords)


def test_the_scheduler_never_waits_on_ray_while_it_holds_its_lock() -> None:
    """Every ``with ... lock:`` block of the scheduler, and every scheduler function it calls (by name, transitively),
    makes no blocking call: it takes a snapshot under the lock and calls Ray outside it."""
    sources = {p.name: ast.parse(p.read_text()) for p in (PACKAGE / "scheduler").glob("*.py")}
    functions: dict[str, list[tuple[str, ast.FunctionDef]]] = {}
    for name, tree in sources.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef):
                functions.setdefault(node.name, []).append((name, node))

    def reached(node: ast.AST, seen: frozenset[str], path: list[str], found: list[str]) -> None:
        for call in (n for n in ast.walk(node) if isinstance(n, ast.Call)):
            if _blocking(call):
                found.append(" -> ".join([*path, ast.unparse(call)[:70]]))
            func = call.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if isinstance(func, ast.Attribute) and ast.unparse(func.value) == "ray":
                continue  # Ray's own (ray.cancel, ray.kill), not the scheduler's
            if name in functions and name not in seen:
                for where, definition in functions[name]:
                    reached(definition, seen | {name}, [*path, f"{where}:{name}"], found)

    found: list[str] = []
    for name, tree in sources.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.With) and any(ast.unparse(i.context_expr).endswith("lock") for i in node.items):
                reached(node, frozenset(), [f"{name}:{node.lineno}"], found)
    assert found == [], "\n".join(found)


def test_a_route_or_page_never_builds_sql() -> None:
    """Queries live in the store's repositories; routes and pages call them (the readiness probe's ``SELECT 1`` aside)."""
    builders = {"select", "insert", "update", "delete", "func", "and_", "or_"}
    found = {}
    for path in [*(PACKAGE / "api/routes").glob("*.py"), *(PACKAGE / "api/web").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "sqlalchemy":
                if used := sorted({a.name for a in node.names} & builders):
                    found[path.name] = used
    assert found == {}
