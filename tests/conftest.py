"""Shared fixtures: a database per test on SQLite and on a real PostgreSQL, and a live API over HTTP."""

from __future__ import annotations

import atexit
import functools
import hashlib
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
import json
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import uuid
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, MetaData, select, text

from annoray.api.app import create_app
from annoray.api.server import BackgroundServer, free_port
from annoray.platform.settings import Settings
from annoray.platform.store.home import init_home

SAMPLES = Path(__file__).resolve().parents[1] / "src/annoray/platform/samples"


@dataclass
class PostgresServer:
    host: str
    port: int

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@{self.host}:{self.port}/{database}"


def _postgres_missing() -> str | None:
    if not (shutil.which("initdb") and shutil.which("pg_ctl")):
        return "PostgreSQL binaries (initdb, pg_ctl) are not on PATH"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' user to run initdb as"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install 'annoray[postgres]')"
    return None


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL cluster started from the local binaries for the whole session."""
    reason = _postgres_missing()
    if reason:
        pytest.skip(reason)
    # Not under pytest's tmp folder: that is private to root, and the server may run as 'postgres'.
    root = Path(tempfile.mkdtemp(prefix="annoray-pg-"))
    os.chmod(root, 0o755)
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    prefix: list[str] = []
    if os.geteuid() == 0:
        pg = pwd.getpwnam("postgres")
        os.chown(root, pg.pw_uid, pg.pw_gid)
        os.chown(sock, pg.pw_uid, pg.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    port = free_port()

    def run(*cmd: str) -> None:
        done = subprocess.run(prefix + list(cmd), capture_output=True, text=True, cwd=root)
        if done.returncode:
            raise RuntimeError(f"{' '.join(cmd[:1])} failed: {done.stderr or done.stdout}")

    run("initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
    run("pg_ctl", "-D", str(data), "-l", str(root / "log"), "-w", "-o",
        f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200", "start")
    try:
        yield PostgresServer("127.0.0.1", port)
    finally:
        run("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


BOTH = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


OWN_RAY = {"two_node_cluster", "two_cpu_ray", "own_ray"}  # fixtures that put a Ray of another shape in its place


GROUPS = "ANNORAY_TEST_GROUPS"  # where xdist's workers leave the group of each test for the controller's scheduler


def pytest_configure(config: pytest.Config) -> None:
    if getattr(config.option, "dist", "no") == "loadgroup" and not hasattr(config, "workerinput"):
        os.environ[GROUPS] = tempfile.mkdtemp(prefix="annoray-test-groups-")  # the workers, started later, inherit it
        atexit.register(shutil.rmtree, os.environ[GROUPS], ignore_errors=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests on a Ray of their own run last, in collection order: each shuts the session's Ray down, and a test on the
    session's Ray after it would start that again (seconds of both cores each time).

    On two workers (`-n 2 --dist loadgroup`, the default) every test on the session's Ray is one group, run in this order
    on one worker, which alone starts that Ray; the tests on a Ray of their own are a second group; the rest go to
    whichever worker is free. Two Rays of the session would each take a share of two cores, while these tests spend
    much of their time waiting (on Ray's processes starting, on a run's report) and the rest of the suite fills the
    other core."""
    def own_ray(item: pytest.Item) -> bool:
        names = set(getattr(item, "fixturenames", ()))
        return bool(names & OWN_RAY) or ("_ray_shutdown" in names and "ray_session" not in names)

    items.sort(key=own_ray)
    if hasattr(config, "workerinput") and os.environ.get(GROUPS):
        groups = {item.nodeid: "own_ray" if own_ray(item) else "session_ray" for item in items
                  if own_ray(item) or "ray_session" in getattr(item, "fixturenames", ())}
        path = Path(os.environ[GROUPS]) / f"{config.workerinput['workerid']}.json"
        path.with_suffix(".tmp").write_text(json.dumps(groups))
        path.with_suffix(".tmp").replace(path)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """pytest-xdist's `loadgroup`, its groups read from what the workers wrote: its own `xdist_group` marks reach its
    scheduler by a suffix on each test's id, which pytest 9 no longer lets a plugin change (pytest-xdist#1386)."""
    from xdist.scheduler import LoadScopeScheduling

    if config.getvalue("dist") != "loadgroup":
        return None

    class Groups(LoadScopeScheduling):
        groups: dict[str, str] | None = None

        def _split_scope(self, nodeid: str) -> str:
            if self.groups is None:  # asked once every worker has collected, so each has written its file
                self.groups = {}
                for path in Path(os.environ[GROUPS]).glob("*.json"):
                    self.groups |= json.loads(path.read_text())
            return self.groups.get(nodeid, nodeid)

    return Groups(config, log)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test that needs a database gets SQLite; one marked ``both_databases`` (the store's own behaviour is under
    test) runs on a real PostgreSQL too. A test may also parametrize ``database_url`` itself."""
    if "database_url" not in metafunc.fixturenames:
        return
    if any("database_url" in marker.args[0] for marker in metafunc.definition.iter_markers("parametrize")):
        return
    both = metafunc.definition.get_closest_marker("both_databases") is not None
    metafunc.parametrize("database_url", BOTH if both else ["sqlite"], indirect=True)


def _admin_dsn(server: PostgresServer) -> str:
    return f"host={server.host} port={server.port} user=postgres dbname=postgres"


@functools.cache
def sqlite_template() -> Path:
    """A SQLite database migrated to the head once per session, which each test's database starts as a copy of."""
    from annoray.platform.store.db import create_db_engine, migrate

    root = Path(tempfile.mkdtemp(prefix="annoray-template-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    engine = create_db_engine(f"sqlite:///{root / 'template.db'}")
    migrate(engine)
    engine.dispose()
    return root / "template.db"


@pytest.fixture(scope="session")
def postgres_template(postgres_server: PostgresServer) -> str:
    """A PostgreSQL database migrated to the head once per session: each test's database is made from it (TEMPLATE)."""
    import psycopg

    from annoray.platform.store.db import create_db_engine, migrate

    with psycopg.connect(_admin_dsn(postgres_server), autocommit=True) as conn:
        conn.execute('CREATE DATABASE "annoray_template"')
    engine = create_db_engine(postgres_server.url("annoray_template"))
    migrate(engine)
    engine.dispose()
    return "annoray_template"


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of the test's own (see `migrated`)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'annoray.db'}"
        return
    import psycopg

    server: PostgresServer = request.getfixturevalue("postgres_server")
    request.getfixturevalue("postgres_template")  # made before any test database, while nobody is connected to it
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_admin_dsn(server), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield server.url(name)
    with psycopg.connect(_admin_dsn(server), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def migrated(url: str) -> None:
    """Make the empty database at ``url`` a copy of the session's migrated template (a file copy on SQLite,
    ``CREATE DATABASE ... TEMPLATE`` on PostgreSQL) instead of running every migration again."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        shutil.copyfile(sqlite_template(), parsed.database)
        return
    import psycopg

    dsn = f"host={parsed.host} port={parsed.port} user=postgres dbname=postgres"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{parsed.database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{parsed.database}" TEMPLATE "annoray_template"')


ISSUER = "annoray-test-issuer"
SECRET = "sk-live-7f3a9c1e-never-show-me"


@functools.cache
def issuer_key() -> Any:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.generate()


def trusting(settings: Settings) -> Settings:
    """The settings with the tests' license issuer trusted."""
    from annoray.platform.access.licenses import public_key_text

    return settings.model_copy(update={"licenses": settings.licenses.model_copy(
        update={"issuers": {ISSUER: public_key_text(issuer_key())}})})


def license_document(scopes: list[str], seats: int = 1, *, key: str | None = None, days: float = 365, **extra: Any) -> dict:
    """A license signed by the tests' issuer, carrying a secret that must never come back."""
    from annoray.platform.access.licenses import sign_license

    fields = {"id": key or f"LIC-{uuid.uuid4().hex[:8]}", "issuer": ISSUER, "scopes": scopes, "seats": seats,
              "expires_at": (datetime.now(UTC) + timedelta(days=days)).isoformat(), "licensee": "Clinic GmbH",
              "secret": SECRET, **extra}
    return sign_license(fields, issuer_key())


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return trusting(Settings(home=tmp_path / "home", database_url=database_url))


@pytest.fixture
def engine(settings: Settings, database_url: str) -> Iterator[Engine]:
    migrated(database_url)
    engine = init_home(settings)
    yield engine
    engine.dispose()


class FollowsWork(httpx.HTTPTransport):
    """A transport that, as the CLI's client does, follows slow work a request handed off (202 with a ``Location``
    under ``/api/work/``) to its end, and answers what the request answers when the work ends at once: the tests of
    uploads, config checks and imports then hold however long the work takes on a busy machine. The 202 itself is
    tested in ``api/test_work.py``."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        location = response.headers.get("location", "")
        if response.status_code != 202 or not location.startswith("/api/work/"):
            return response
        response.read()
        while True:
            poll = super().handle_request(httpx.Request("GET", request.url.copy_with(path=location, query=None),
                                                        headers={"authorization": request.headers.get("authorization", "")}))
            state = json.loads(poll.read())
            if state.get("status") not in ("queued", "running"):
                break
            time.sleep(0.2)
        if state["status"] == "succeeded":
            return httpx.Response(201, json=state["result"], request=request)
        error = state["error"]
        return httpx.Response(error["status"], json={"detail": error["detail"], "errors": error["errors"]}, request=request)


def http_client(url: str, token: str, **kwargs: Any) -> httpx.Client:
    """A client of a test's API with ``token``, following slow work to its end."""
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60, transport=FollowsWork(),
                        **kwargs)


@dataclass
class Api:
    """A live API over real HTTP, with the admin's client and helpers to make users and projects."""

    url: str
    admin: httpx.Client
    engine: Engine
    clients: dict[str, httpx.Client] = field(default_factory=dict)
    settings: Settings | None = None

    def client(self, token: str) -> httpx.Client:
        return http_client(self.url, token)

    def user(self, username: str) -> httpx.Client:
        r = self.admin.post("/api/users", json={"username": username})
        assert r.status_code == 201, r.text
        self.clients[username] = self.client(r.json()["token"])
        return self.clients[username]

    def snapshot(self) -> str:
        """A digest of every row of every table but the audit trail and the work records (they record refusals too,
        the latter of slow work refused after a request's wait), and but the tokens' last uses, which a thread of the API
        writes every two seconds whatever the request: equal digests mean the request changed nothing."""
        meta = MetaData()
        meta.reflect(self.engine)
        digest = hashlib.sha256()
        with self.engine.connect() as conn:
            for name, table in sorted(meta.tables.items()):
                if name in ("alembic_version", "audit_events", "work_jobs"):
                    continue
                columns = [c for c in table.columns if (name, c.name) != ("api_tokens", "last_used_at")]  # written out of band
                rows = conn.execute(select(*columns).order_by(*table.primary_key.columns)).all()
                digest.update(name.encode() + json.dumps([list(map(str, r)) for r in rows]).encode())
        return digest.hexdigest()


@pytest.fixture
def api(settings: Settings, engine: Engine) -> Iterator[Api]:
    token = settings.admin_token_path.read_text().strip()
    with BackgroundServer(create_app(settings, engine=engine)) as url:
        admin = http_client(url, token)
        yield Api(url, admin, engine, settings=settings)
        admin.close()


GIB = 2**30


def shutdown_ray() -> None:
    """Serve first, then Ray. Serve keeps its controller's handle in the driver, keyed by the driver's job id, and a
    fresh local Ray gives its first driver the same job id (Ray 2.60): a handle left from the last Ray would look
    current to the next one and fail with "Can't find actor"."""
    import ray
    from ray import serve

    if ray.is_initialized():
        serve.shutdown()
    ray.shutdown()


@pytest.fixture(scope="session")
def _ray_shutdown() -> Iterator[None]:
    yield
    shutdown_ray()


@pytest.fixture
def ray_session(_ray_shutdown: None) -> None:
    """A local Ray shaped like one 16-CPU / 64 GB node (logical resources), started once and shared.

    A test that needs another shape (a multi-node cluster) shuts it down; the next test starts it again.
    """
    import ray
    if not ray.is_initialized():
        ray.init(address="local", num_cpus=16, _memory=64 * GIB, include_dashboard=False, log_to_driver=False,
                 namespace="annoray-tests", runtime_env=RAY_JOB_ENV)


def ray_job_env() -> dict[str, Any]:
    """What annoray gives the job where it starts Ray (`factory.connect_ray`), for tests' settings (the defaults')."""
    from annoray.trainers.ray_train import train_env

    return {"env_vars": train_env(Settings(home=Path(tempfile.gettempdir())))}


RAY_JOB_ENV = ray_job_env()


def ray_available(timeout: float = 30.0) -> dict[str, float]:
    """`ray.available_resources()`, asked again when Ray's GCS leaves it unanswered. Seen once under load (Ray 2.60): the
    call waited for ever in C++ (`GlobalStateAccessor::GetAllAvailableResources` has no timeout), where pytest-timeout's
    signal cannot interrupt it, and the whole run hung."""
    import ray

    for _ in range(5):
        pool = ThreadPoolExecutor(1)
        try:
            return pool.submit(ray.available_resources).result(timeout=timeout)
        except FutureTimeout:
            continue
        finally:
            pool.shutdown(wait=False)  # a call left hanging keeps its thread, not the test
    raise TimeoutError("Ray's GCS left ray.available_resources() unanswered five times")


def scheduler_settings(home: Path, **training: object) -> Settings:
    """Settings with a scheduler of its own name, so tests never share one.

    Two pages are OCR'd at once, as many as this machine has cores: the session's Ray has 16 logical CPUs, so the
    default (8) would start eight Ray worker processes for eight Tesseracts sharing two cores (the Visual NER test started
    16 for its 30 pages, 2.5 s of CPU each before any OCR)."""
    settings = trusting(Settings(home=home))
    return settings.model_copy(update={
        "scheduler": settings.scheduler.model_copy(update={"name": f"scheduler-{uuid.uuid4().hex[:8]}", "namespace": "annoray-tests"}),
        "training": settings.training.model_copy(update=training),
        "ocr": settings.ocr.model_copy(update={"max_in_flight": 2}),
    })


@pytest.fixture
def training_settings(tmp_path: Path) -> Settings:
    return scheduler_settings(tmp_path / "home")


@contextmanager
def live_api(settings: Settings) -> Iterator[Api]:
    """A live API with its own scheduler actor on the connected Ray; both, and the servers it deployed, go when the block
    ends (a replica left running would hold its CPU into the next test)."""
    from annoray.scheduler.start import start_scheduler, stop_scheduler

    if settings.database_url is None and not (settings.home / "annoray.db").exists():  # from the migrated template
        settings.home.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(sqlite_template(), settings.home / "annoray.db")
    engine = init_home(settings)
    start_scheduler(settings)
    token = settings.admin_token_path.read_text().strip()
    try:
        with BackgroundServer(create_app(settings, engine=engine)) as url:
            admin = http_client(url, token)
            yield Api(url, admin, engine, settings=settings)
            admin.close()
    finally:
        stop_scheduler(settings)
        _delete_serve_apps()
        engine.dispose()


def _delete_serve_apps() -> None:
    from ray import serve
    from ray.serve.context import _get_global_client

    if _get_global_client(raise_if_no_controller_running=False) is None:  # Serve never started on this Ray
        return
    for name in serve.status().applications:
        serve.delete(name)


@pytest.fixture
def training_api(ray_session: None, training_settings: Settings) -> Iterator[Api]:
    """A live API on SQLite with its own scheduler actor on the session's Ray."""
    with live_api(training_settings) as api:
        yield api


@pytest.fixture(scope="session")
def clinical_config() -> str:
    return (SAMPLES / "clinical_config.xml").read_text()


@pytest.fixture(scope="session")
def clinical_tasks() -> list[dict]:
    return json.loads((SAMPLES / "clinical_tasks.json").read_text())


def count_rows(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        return conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()


def refused(api: Api, send: Callable[[], httpx.Response], status: int) -> dict:
    """Send a request that must be refused; check the status, the error body, and that no row changed."""
    before = api.snapshot()
    response = send()
    assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body["detail"], str) and body["detail"] and isinstance(body["errors"], list)
    assert api.snapshot() == before
    return body


def csrf_of(html: str) -> str:
    """The CSRF token a page's forms carry."""
    return re.search(r'name="csrf" value="([^"]+)"', html)[1]


def signed_in(api: Api, client: httpx.Client) -> httpx.Client:
    """An HTTP client holding a dashboard session of ``client``'s user."""
    web = httpx.Client(base_url=api.url, follow_redirects=False)
    csrf = csrf_of(web.get("/ui/sign-in").text)
    assert web.post("/ui/sign-in", data={"token": client.headers["Authorization"][7:], "csrf": csrf}).status_code == 303
    return web


ENDED = ("succeeded", "failed", "cancelled")


def wait_for(api: Api, path: str, until: Callable[[dict], Any], timeout: float = 180) -> dict:
    """Poll GET ``path`` as the admin until ``until`` holds for its JSON; return that state."""
    deadline = time.monotonic() + timeout
    while True:
        state = api.admin.get(path).json()
        if until(state):
            return state
        assert time.monotonic() < deadline, f"{path} did not get there: {state}"
        time.sleep(0.5)


def wait_for_trainings(client: httpx.Client, job_ids: list[int], *, until: Callable[[dict], bool] | None = None,
                       timeout: float = 300) -> tuple[list[dict], list[list[dict]]]:
    """Poll the jobs until each has ended (or ``until`` holds for it); return their last state and every state seen."""
    until = until or (lambda job: job["status"] in ENDED)
    seen: list[list[dict]] = [[] for _ in job_ids]
    deadline = time.monotonic() + timeout
    while True:
        states = [client.get(f"/api/trainings/{j}").json() for j in job_ids]
        for history, state in zip(seen, states, strict=True):
            history.append(state)
        if all(until(s) for s in states):
            return states, seen
        if time.monotonic() > deadline:
            raise AssertionError(f"trainings did not get there in {timeout} s: {[(s['id'], s['status'], s['progress']) for s in states]}")
        time.sleep(0.5)


def cancel_all(client: httpx.Client, job_ids: list[int]) -> None:
    """Cancel the jobs, those not running first: a running one cancelled first would give its room or its seat to one
    that waits, whose run would start (four Ray processes, seconds of both cores) only to be cancelled."""
    running = {j for j in job_ids if client.get(f"/api/trainings/{j}").json()["status"] == "running"}
    for job_id in sorted(job_ids, key=lambda j: j in running):
        client.post(f"/api/trainings/{job_id}/cancel")


NER_CONFIG = """<View>
  <Text name="text" value="$text"/>
  <Labels name="label" toName="text">
    <Label value="{label}"/>
  </Labels>
</View>"""

GERMAN = ["Fieber", "Husten", "Übelkeit", "Kopfschmerzen", "Ausschlag", "Müdigkeit", "Schwindel", "Atemnot"]


def span_task(text: str, entity: str, label: str) -> dict:
    start = text.index(entity)
    return {"data": {"text": text}, "annotations": [{"result": [{
        "from_name": "label", "to_name": "text", "type": "labels",
        "value": {"start": start, "end": start + len(entity), "text": entity, "labels": [label]}}]}]}


def german_project(client: httpx.Client, name: str = "Klinik", model_type: str = "open_source") -> int:
    pid = client.post("/api/projects", json={"name": name, "language": "de", "model_type": model_type,
                                             "labeling_config": NER_CONFIG.format(label="Befund")}).json()["id"]
    tasks = [span_task(f"Der Patient klagt seit Montag über {e} und Schmerzen.", e, "Befund") for e in GERMAN]
    assert client.post(f"/api/projects/{pid}/tasks/import", json=tasks * 2).status_code == 201
    return pid


# Label Studio's OCR template: labels and rectangles on an image, a transcription per region
VISUAL_CONFIG = """<View>
  <Image name="image" value="$ocr"/>
  <Labels name="label" toName="image"><Label value="Vendor"/><Label value="Total"/></Labels>
  <Rectangle name="bbox" toName="image" strokeWidth="3"/>
  <TextArea name="transcription" toName="image" editable="true" perRegion="true" rows="5"/>
</View>"""


def sample_forms(api: "Api", count: int) -> tuple[int, list[dict], list[dict]]:
    """A project of the first ``count`` bundled sample invoices: images uploaded, their gold tasks pointed at the
    pages and imported (OCR not waited for); returns its id, the tasks and the uploaded files."""
    from importlib import resources

    forms = resources.files("annoray.platform") / "samples" / "forms"
    tasks = json.loads((forms / "tasks.json").read_text())[:count]
    pid = api.admin.post("/api/projects", json={"name": "invoices", "labeling_config": (forms / "config.xml").read_text()}).json()["id"]
    files = [("file", (t["data"]["ocr"], (forms / t["data"]["ocr"]).read_bytes(), "image/png")) for t in tasks]
    items = api.admin.post(f"/api/projects/{pid}/files", files=files).json()["items"]
    for task, item in zip(tasks, items, strict=True):
        task["data"]["ocr"] = item["pages"][0]["url"]
    assert api.admin.post(f"/api/projects/{pid}/tasks/import", json=tasks).status_code == 201
    return pid, tasks, items


DRUGS = ["aspirin", "ibuprofen", "folic acid", "vitamin D", "metformin", "insulin glargine", "heparin", "warfarin"]
CLINICAL_CONFIG = """<View>
  <Text name="text" value="$text"/>
  <Labels name="label" toName="text"{rules}><Label value="Drug" model="{ner}"/><Label value="Dose"/></Labels>
  <Labels name="status" toName="text"><Label value="present" assertion="true" model="{assertion}"/><Label value="absent" assertion="true" model="{assertion}"/></Labels>
  <Choices name="specialty" toName="text" model="{classification}"><Choice value="cardiology"/><Choice value="neurology"/></Choices>
</View>"""


def clinical_sentences() -> list[tuple[str, int, int, str, str]]:
    """(text, drug start, drug end, assertion, specialty) — small, clear-cut training data."""
    out = []
    for i, drug in enumerate(DRUGS * 3):
        negated = i % 2 == 1
        organ, specialty = ("heart", "cardiology") if i % 3 else ("brain", "neurology")
        text = (f"No {drug} was given for the {organ} problem." if negated
                else f"The patient takes {drug} daily for the {organ} problem.")
        start = text.index(drug)
        out.append((text, start, start + len(drug), "absent" if negated else "present", specialty))
    return out


@functools.cache
def tiny_models() -> dict[str, Path]:
    """A NER, an assertion and a classification model trained with the platform's own engines, once per session
    (a few seconds); callers copy them, never change them."""
    from annoray.platform.labeling.datasets import AssertionExample, ClassificationExample, NerExample
    from annoray.platform.models.training import TrainingParams
    from annoray.trainers.engines import MODEL_DIR, EngineConfig, SpacyAssertion, SpacyClassification, SpacyNer

    rows = clinical_sentences()
    data = {
        "ner": (SpacyNer, ["Drug"], [NerExample(i, i, t, [(s, e, "Drug")]) for i, (t, s, e, _, _) in enumerate(rows)]),
        "assertion": (SpacyAssertion, ["present", "absent"],
                      [AssertionExample(i, i, t, s, e, "Drug", a) for i, (t, s, e, a, _) in enumerate(rows)]),
        "classification": (SpacyClassification, ["cardiology", "neurology"],
                           [ClassificationExample(i, i, t, [c]) for i, (t, _, _, _, c) in enumerate(rows)]),
    }
    root = Path(tempfile.mkdtemp(prefix="annoray-tiny-models-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    out = {}
    for kind, (engine, labels, examples) in data.items():
        work = root / kind
        for _ in engine(EngineConfig(language="en", labels=labels)).train(
                train=examples, dev=[], params=TrainingParams(epochs=12, batch_size=4, dropout=0.1), output_dir=work):
            pass
        out[kind] = work / MODEL_DIR
    return out


NAMES = {"ner": "ner_clinic", "assertion": "assertion_clinic", "classification": "classification_clinic"}


def register_models(api: Api) -> None:
    """Put the tiny models in the model store and the catalog, as a finished training would."""
    from sqlalchemy.orm import Session

    from annoray.platform.store.tables import CatalogModel
    from annoray.trainers.store import ModelStore

    store = ModelStore(api.settings.resolved_model_store)
    labels = {"ner": ["Drug"], "assertion": ["present", "absent"], "classification": ["cardiology", "neurology"]}
    with Session(api.engine) as session:
        for kind, path in tiny_models().items():
            uri = store.put(path, NAMES[kind])
            session.add(CatalogModel(name=NAMES[kind], kind=kind, labels=labels[kind], language="en", engine=f"spacy.{kind}.v1",
                                     source="manual", uri=uri, metrics={}))
        session.commit()


def clinic(api: Api, name: str, *, rules: str = "", model_type: str = "open_source", annotated: int = 2, copies: int = 1) -> int:
    config = CLINICAL_CONFIG.format(rules=rules, **NAMES)
    pid = api.admin.post("/api/projects", json={"name": name, "labeling_config": config, "model_type": model_type}).json()["id"]
    tasks = []
    for i, (text_, start, end, _, _) in enumerate(clinical_sentences() * copies):
        task = {"data": {"text": text_}}
        if i < annotated:
            task["annotations"] = [{"result": [{"from_name": "label", "to_name": "text", "type": "labels", "value": {
                "start": start, "end": end, "text": text_[start:end], "labels": ["Drug"]}}]}]
        tasks.append(task)
    assert api.admin.post(f"/api/projects/{pid}/tasks/import", json=tasks).status_code == 201
    return pid
