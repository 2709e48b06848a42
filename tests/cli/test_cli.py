"""The `annoray` command on a fresh home: `up` creates everything and serves; `quickstart` runs the main job."""

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from annoray.api.client import AnnorayClient
from annoray.api.server import free_port

ANNORAY = [sys.executable, "-m", "annoray.api.cli"]


@pytest.mark.slow
@pytest.mark.ray
@pytest.mark.timeout(600)
def test_up_creates_home_database_and_private_admin_token_then_serves(tmp_path: Path) -> None:
    home, port = tmp_path / "home", free_port()
    env = os.environ | {"ANNORAY_DATABASE_URL": ""}
    env.pop("ANNORAY_DATABASE_URL")

    def start(*options: str, **environ: str) -> subprocess.Popen:
        proc = subprocess.Popen(ANNORAY + ["up", "--home", str(home), "--port", str(port), *options], env=env | environ,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/health").status_code == 200:
                    return proc
            except httpx.TransportError:
                time.sleep(0.2)
        proc.kill()
        raise AssertionError(proc.stdout.read().decode())

    home.mkdir(mode=0o755)  # a home made before: it gets private modes too
    proc = start()
    try:
        token_file = home / "admin.token"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        assert stat.S_IMODE((home / "annoray.db").stat().st_mode) == 0o600, "the database holds licence secrets"
        assert stat.S_IMODE(home.stat().st_mode) == 0o700
        token = token_file.read_text().strip()
        # The address `up` serves: a browser reaches the dashboard's sign-in, an API client is told where to go.
        assert httpx.get(f"http://127.0.0.1:{port}/", follow_redirects=True).url.path == "/ui/sign-in"
        pointer = httpx.get(f"http://127.0.0.1:{port}/", headers={"Accept": "application/json"})
        assert pointer.status_code == 200 and pointer.json()["docs"] == "/docs"
        # A plain spaCy pipeline, made in another process, is imported by this fresh one (spaCy registers its own
        # factories lazily: a fresh process must not take 'ner' for unknown).
        pipeline = tmp_path / "plain-ner"
        subprocess.run([sys.executable, "-c", "import spacy, sys; nlp = spacy.blank('en'); nlp.add_pipe('ner').add_label('Drug'); "
                        "nlp.initialize(); nlp.to_disk(sys.argv[1])", str(pipeline)], check=True, timeout=120)
        imported = AnnorayClient(f"http://127.0.0.1:{port}", token).post(  # follows the import's work, if it is slow
            "/api/models/import", {"name": "plain-ner", "uri": str(pipeline)})
        assert imported["labels"] == ["Drug"], imported
        r = httpx.post(f"http://127.0.0.1:{port}/api/users", json={"username": "ann"}, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 201
        cluster = httpx.get(f"http://127.0.0.1:{port}/api/cluster", headers={"Authorization": f"Bearer {token}"}, timeout=60)
        assert cluster.status_code == 200 and cluster.json()["nodes"], "Ray and the scheduler did not start"
        ready = httpx.get(f"http://127.0.0.1:{port}/api/health/ready", timeout=60)
        assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok", "migrations": "ok", "scheduler": "ok"}
        printed = next(line for line in iter(proc.stdout.readline, b"") if line.startswith(b"dashboard: ")).decode()
        assert f"http://127.0.0.1:{port}/ui/" in printed and "/ui/sign-in/" not in printed, "no sign-in link in a log"
        link_file = home / "sign-in.link"
        assert str(link_file) in printed and stat.S_IMODE(link_file.stat().st_mode) == 0o600
        link = link_file.read_text().strip()
        with httpx.Client(follow_redirects=False) as browser:
            assert browser.get(link).headers["location"] == "/ui/", "the link signs the admin in"
            assert "admin" in browser.get(f"http://127.0.0.1:{port}/ui/").text
        assert httpx.get(link).status_code == 401, "the link works once"
    finally:
        proc.terminate()
        proc.wait(30)
    # A second start keeps the admin, its token and the data; listening beyond loopback, it warns; logs are JSON lines.
    proc = start("--host", "0.0.0.0", ANNORAY_API__LOG_FORMAT="json")
    try:
        assert token_file.read_text().strip() == token
        r = httpx.post(f"http://127.0.0.1:{port}/api/users", json={"username": "ann"}, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 409
    finally:
        proc.terminate()
        output = proc.communicate(timeout=30)[0].decode()
    assert "warning: the API listens on 0.0.0.0, beyond this machine, over plain HTTP" in output
    logged = [json.loads(line) for line in output.splitlines() if line.startswith('{"time"')]
    assert any(entry["logger"].startswith("uvicorn") for entry in logged), output[-2000:]


def test_convert_conll_writes_importable_tasks(tmp_path: Path) -> None:
    src = tmp_path / "in.tsv"
    src.write_text("Ataxia\tB-Disease\ntelangiectasia\tI-Disease\n\nNo\tO\n")
    done = subprocess.run(ANNORAY + ["convert-conll", str(src), str(tmp_path / "out.json"), "--tag", "train"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    import json

    tasks = json.loads((tmp_path / "out.json").read_text())
    assert len(tasks) == 2 and tasks[0]["annotations"][0]["result"][0]["value"]["text"] == "Ataxia telangiectasia"
