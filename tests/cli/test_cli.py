"""The `annoray` command on a fresh home: `up` creates everything and serves; `quickstart` runs the main job."""

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from annoray.api.server import free_port

ANNORAY = [sys.executable, "-m", "annoray.api.cli"]


@pytest.mark.slow
@pytest.mark.ray
@pytest.mark.timeout(600)
def test_up_creates_home_database_and_private_admin_token_then_serves(tmp_path: Path) -> None:
    home, port = tmp_path / "home", free_port()
    env = os.environ | {"ANNORAY_DATABASE_URL": ""}
    env.pop("ANNORAY_DATABASE_URL")

    def start() -> subprocess.Popen:
        proc = subprocess.Popen(ANNORAY + ["up", "--home", str(home), "--port", str(port)], env=env,
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

    proc = start()
    try:
        token_file = home / "admin.token"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        assert (home / "annoray.db").exists()
        token = token_file.read_text().strip()
        r = httpx.post(f"http://127.0.0.1:{port}/api/users", json={"username": "ann"}, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 201
        cluster = httpx.get(f"http://127.0.0.1:{port}/api/cluster", headers={"Authorization": f"Bearer {token}"}, timeout=60)
        assert cluster.status_code == 200 and cluster.json()["nodes"], "Ray and the scheduler did not start"
    finally:
        proc.terminate()
        proc.wait(30)
    proc = start()  # a second start keeps the admin, its token and the data
    try:
        assert token_file.read_text().strip() == token
        r = httpx.post(f"http://127.0.0.1:{port}/api/users", json={"username": "ann"}, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 409
    finally:
        proc.terminate()
        proc.wait(30)


@pytest.mark.slow
@pytest.mark.ray
@pytest.mark.timeout(900)
def test_quickstart_trains_deploys_preannotates_then_retrains_and_redeploys_by_active_learning(tmp_path: Path) -> None:
    done = subprocess.run(ANNORAY + ["quickstart", "--home", str(tmp_path / "qs")], capture_output=True, text=True,
                          env=os.environ | {"COLUMNS": "250"}, timeout=850)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "imported 1657 tasks (60 of them held back unannotated" in out
    for expected in ("ner", "assertion", "classification (temporality)", "Condition", "Absent", "Not particular", "[E302]",
                     "ner_clinical_quickstart_annotation_manual", "assertion_clinical_quickstart_annotation_manual",
                     "classification_temporality_annotation_manual", "micro avg", "macro avg", "first model of its kind"):
        assert expected in out, expected
    assert "server clinical-quickstart-server (id 1) running" in out
    preannotated = int(out.split("pre-annotated ")[1].split(" tasks")[0])
    assert preannotated == 1657 - 1490 + 60, "every task with no completion is pre-annotated"
    assert "least sure of" in out and "temporality: " in out
    assert "60 completions submitted: training 4, 5, 6 queued (source active_learning); 10 count toward the next one" in out
    retrain = out.split("3. active learning")[1]
    for model in ("ner_clinical_quickstart_annotation_active_learning", "assertion_clinical_quickstart_annotation_active_learning",
                  "classification_temporality_annotation_active_learning"):
        assert f"replaces {model.replace('active_learning', 'manual')}" in retrain, model
        assert f"  {model} (" in retrain.split("server redeployed:")[1], f"the redeployed server serves {model}"
    flat = " ".join(out.split())  # long paths wrap
    for where in ("models: " + str(tmp_path / "qs" / "models"), "annoray jobs --job <id> --log", "Ray's own logs"):
        assert where in flat, where
    models = tmp_path / "qs" / "models"
    assert sorted(p.name for p in models.iterdir()) == sorted(
        f"{kind}_annotation_{source}" for kind in ("ner_clinical_quickstart", "assertion_clinical_quickstart", "classification_temporality")
        for source in ("manual", "active_learning"))


def test_convert_conll_writes_importable_tasks(tmp_path: Path) -> None:
    src = tmp_path / "in.tsv"
    src.write_text("Ataxia\tB-Disease\ntelangiectasia\tI-Disease\n\nNo\tO\n")
    done = subprocess.run(ANNORAY + ["convert-conll", str(src), str(tmp_path / "out.json"), "--tag", "train"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    import json

    tasks = json.loads((tmp_path / "out.json").read_text())
    assert len(tasks) == 2 and tasks[0]["annotations"][0]["result"][0]["value"]["text"] == "Ataxia telangiectasia"
