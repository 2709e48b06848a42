"""The dashboard in a real browser (Debian's Chromium, driven by Playwright): sign in with a token, see only one's
projects, train from the Train button and see the jobs at once, download a log, sign out; and the cookie and CSRF
rules checked from outside the browser."""

import re
import shutil
from pathlib import Path

import httpx
import pytest

from ..conftest import Api

CHROMIUM = next((p for p in ("/usr/lib/chromium/chromium", shutil.which("chromium") or "") if p and Path(p).exists()), None)
playwright = pytest.importorskip("playwright.sync_api", reason="playwright is in the dev extra")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed: sh scripts/system-packages.sh --tests")


@pytest.fixture
def browser():
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


def test_sign_in_see_ones_projects_train_with_feedback_download_the_log_and_sign_out(api: Api, clinic, browser) -> None:
    pid, owner = clinic
    api.admin.post("/api/projects", json={"name": "not hers", "labeling_config": owner.get(f"/api/projects/{pid}").json()["labeling_config"]})
    page = browser.new_page()
    page.goto(f"{api.url}/ui/")
    assert page.url.endswith("/ui/sign-in"), "a visitor who is not signed in is sent to sign in"
    page.fill("input[name=token]", "ar_not_a_token")
    page.click("button[type=submit]")
    assert "that token is not one annoray knows" in page.inner_text("[role=alert]")

    page.fill("input[name=token]", owner.headers["Authorization"].removeprefix("Bearer "))
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/ui/$"))
    rows = page.locator("tbody tr").all_inner_texts()
    assert len(rows) == 1 and "clinic" in rows[0] and "owner" in rows[0] and "not hers" not in " ".join(rows), rows
    cookie = next(c for c in page.context.cookies() if c["name"] == "annoray_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"

    page.click("text=clinic")
    page.fill("input[name=epochs]", "3")
    page.click("form.train button")
    notice = page.locator("#train-result [role=status]")
    notice.wait_for(timeout=20_000)
    assert notice.inner_text().startswith("queued: training"), notice.inner_text()
    jobs = owner.get(f"/api/projects/{pid}/trainings").json()
    assert len(jobs) == 3 and all(j["params"]["epochs"] == 3 for j in jobs), "the button sent the API's own request"
    assert page.locator("#trainings tr[data-status=queued]").count() == 3

    with page.expect_download() as download:
        page.locator(f"#trainings tr[data-job='{jobs[0]['id']}'] a").click()
    assert "requested by olivia" in Path(download.value.path()).read_text()

    page.click("text=Sign out")
    page.wait_for_url(re.compile(r".*/ui/sign-in$"))
    page.goto(f"{api.url}/ui/projects/{pid}")
    assert page.url.endswith("/ui/sign-in"), "the session ended"


def test_pages_keep_the_apis_rules_and_forms_need_their_csrf_token(api: Api, clinic) -> None:
    pid, owner = clinic
    with httpx.Client(base_url=api.url, follow_redirects=False) as web:
        web.get("/ui/sign-in")
        stale = web.post("/ui/sign-in", data={"token": owner.headers["Authorization"][7:], "csrf": "forged"})
        assert "this form is stale" in stale.text and "annoray_session" not in stale.cookies
        csrf = re.search(r'name="csrf" value="([^"]+)"', stale.text)[1]  # the form shown again, with a fresh token
        signed = web.post("/ui/sign-in", data={"token": owner.headers["Authorization"][7:], "csrf": csrf})
        assert signed.status_code == 303 and signed.headers["location"] == "/ui/"
        page = web.get(f"/ui/projects/{pid}")
        session_csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)[1]
        before = owner.get(f"/api/projects/{pid}/trainings").json()
        for bad in ("forged", "ü" * 43, ""):
            forged = web.post(f"/ui/projects/{pid}/trainings", data={"csrf": bad, "epochs": "2"})
            assert forged.status_code == 403 and "this form is stale" in forged.text, bad
        assert owner.get(f"/api/projects/{pid}/trainings").json() == before, "a forged form changes nothing"
        other = api.admin.post("/api/projects", json={"name": "private", "labeling_config": page.text and
                                                      owner.get(f"/api/projects/{pid}").json()["labeling_config"]}).json()["id"]
        assert web.get(f"/ui/projects/{other}").status_code == 403, "a page never shows what its user may not see"
        assert web.post(f"/ui/projects/{other}/trainings", data={"csrf": session_csrf}).status_code == 403
        assert web.get("/ui/projects/999999").status_code == 404
        assert web.post("/ui/sign-out", data={"csrf": session_csrf}).status_code == 303
        assert web.get("/ui/").headers["location"] == "/ui/sign-in"
