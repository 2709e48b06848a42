"""Documents in through HTTP: images and PDFs split into upright pages, tasks per page, and every bad file refused
with its reason, the database and the file store unchanged."""

import io
import json
import struct
import zlib
from pathlib import Path

import httpx
import pytest
from PIL import Image, ImageDraw

from ..conftest import VISUAL_CONFIG, Api, refused


def image_bytes(width: int, height: int, format: str = "PNG", **save: object) -> bytes:
    image = Image.new("RGB", (width, height), "white")
    ImageDraw.Draw(image).rectangle((5, 5, width // 2, height // 3), fill="black")  # a mark to find which way is up
    out = io.BytesIO()
    image.save(out, format=format, **save)
    return out.getvalue()


def pdf_bytes(pages: int) -> bytes:
    images = [Image.new("RGB", (300, 400), "white") for _ in range(pages)]
    out = io.BytesIO()
    images[0].save(out, format="PDF", save_all=True, append_images=images[1:], resolution=72)
    return out.getvalue()


def rotated_jpeg() -> bytes:
    """A 200x100 JPEG whose EXIF says: rotate 90 degrees clockwise to view (orientation 6); upright it is 100x200."""
    image = Image.new("RGB", (200, 100), "white")
    ImageDraw.Draw(image).rectangle((150, 0, 199, 99), fill="black")
    exif = Image.Exif()
    exif[0x0112] = 6
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif.tobytes())
    return out.getvalue()


def stored_files(api: Api) -> list[str]:
    root = Path(api.settings.resolved_file_store)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


@pytest.fixture
def visual(api: Api) -> int:
    response = api.admin.post("/api/projects", json={"name": "forms", "labeling_config": VISUAL_CONFIG})
    assert response.status_code == 201, response.text
    assert response.json()["kinds"] == {"visual_ner": response.json()["kinds"]["visual_ner"]}
    return response.json()["id"]


def test_images_pdfs_and_tiffs_become_upright_pages_with_tasks_and_queued_ocr(api: Api, visual: int) -> None:
    tiff = io.BytesIO()
    Image.new("L", (120, 80), "white").save(tiff, format="TIFF", save_all=True, append_images=[Image.new("L", (60, 40), "white")])
    files = [("file", ("scan.png", image_bytes(640, 480), "image/png")), ("file", ("letter.pdf", pdf_bytes(3), "application/pdf")),
             ("file", ("phone.jpg", rotated_jpeg(), "application/octet-stream")), ("file", ("fax.tiff", tiff.getvalue(), "image/tiff"))]
    response = api.admin.post(f"/api/projects/{visual}/files", params={"tasks": "true"}, files=files)
    assert response.status_code == 201, response.text
    png, pdf, jpeg, fax = response.json()["items"]
    assert (png["filename"], png["media_type"], [(p["page"], p["width"], p["height"]) for p in png["pages"]]) == (
        "scan.png", "image/png", [(1, 640, 480)])
    assert pdf["media_type"] == "application/pdf" and [(p["width"], p["height"]) for p in pdf["pages"]] == [(625, 834)] * 3, \
        "300x400 points at 150 dpi"
    assert jpeg["media_type"] == "image/jpeg" and (jpeg["pages"][0]["width"], jpeg["pages"][0]["height"]) == (100, 200), "EXIF applied"
    assert [(p["width"], p["height"]) for p in fax["pages"]] == [(120, 80), (60, 40)], "one page per TIFF frame"
    page = png["pages"][0]
    assert page["url"] == f"/api/files/{png['id']}/pages/1"
    assert {k: page[k] for k in ("ocr", "error", "language", "word_count", "attempts", "seconds")} == {
        "ocr": "queued", "error": None, "language": "en", "word_count": None, "attempts": 0, "seconds": None}

    upright = Image.open(io.BytesIO(api.admin.get(jpeg["pages"][0]["url"]).content))
    assert upright.size == (100, 200) and upright.getpixel((50, 190))[0] < 50, "the black band is at the bottom once upright"
    shown = api.admin.get(f"/api/files/{pdf['id']}").json()
    assert shown == pdf
    assert api.admin.get(f"/api/files/{pdf['id']}/pages/3").headers["content-type"] == "image/png"
    assert api.admin.get(f"/api/files/{pdf['id']}/pages/4").status_code == 404
    assert api.admin.get(f"/api/files/{pdf['id']}/pages/2/ocr").json()["words"] == []

    task_ids = response.json()["task_ids"]
    assert len(task_ids) == 1 + 3 + 1 + 2
    tasks = api.admin.get(f"/api/projects/{visual}/tasks", params={"page_size": 10}).json()["items"]
    assert [t["data"]["ocr"] for t in tasks] == [p["url"] for f in (png, pdf, jpeg, fax) for p in f["pages"]]
    assert [f["id"] for f in api.admin.get(f"/api/projects/{visual}/files").json()] == [png["id"], pdf["id"], jpeg["id"], fax["id"]]

    outsider = api.user("outsider")
    assert outsider.get(page["url"]).status_code == 403 and outsider.get(f"/api/files/{png['id']}").status_code == 403
    api.admin.post(f"/api/projects/{visual}/members", json={"username": "outsider", "role": "annotator"})
    assert outsider.get(page["url"]).status_code == 200
    body = refused(api, lambda: outsider.post(f"/api/projects/{visual}/files", files=files[:1]), 403)
    assert body["detail"].startswith("[E402] role 'annotator' may not upload documents")


def test_each_bad_file_refuses_the_whole_upload_and_nothing_is_stored(api: Api, visual: int) -> None:
    good = ("file", ("ok.png", image_bytes(50, 50), "image/png"))
    upload = f"/api/projects/{visual}/files"

    def refusal(files: list, status: int = 422) -> str:
        body = refused(api, lambda: api.admin.post(upload, files=files), status)
        assert stored_files(api) == [], "no page image is left behind"
        return body["detail"]

    assert refusal([good, ("file", ("notes.png", b"just some text", "image/png"))]).startswith(
        "[E901] file 'notes.png' is not an image or a PDF annoray reads (bytes starting b'just som')")
    assert refusal([("file", ("photo.png", image_bytes(40, 40, "JPEG"), "image/png"))]) == (
        "[E902] file 'photo.png' says it is image/png but its bytes are image/jpeg")
    assert refusal([("file", ("scan.pdf", image_bytes(40, 40), "application/octet-stream"))]).startswith(
        "[E902] file 'scan.pdf' says it is application/pdf")
    truncated = image_bytes(300, 300)[:200]
    assert refusal([("file", ("cut.png", truncated, "image/png"))]).startswith("[E905] file 'cut.png' cannot be read: ")
    assert refusal([]).startswith("[E906] the upload holds no file")

    api.settings.documents.max_pixels, api.settings.documents.max_pages = 100 * 100, 2  # the live app's settings
    assert refusal([good, ("file", ("big.png", image_bytes(101, 100), "image/png"))]) == (
        "[E903] file 'big.png': page 1 is 101x100 = 10100 pixels, more than the limit of 10000 pixels "
        "(ANNORAY_DOCUMENTS__MAX_PIXELS); scale it down")
    assert refusal([("file", ("bomb.png", png_header_only(100_000, 100_000), "image/png"))]) == (
        "[E903] file 'bomb.png': page 1 is 10000000000 pixels, more than the limit of 10000 pixels "
        "(ANNORAY_DOCUMENTS__MAX_PIXELS); scale it down"), "refused from its header, never decoded"
    assert refusal([("file", ("long.pdf", pdf_bytes(3), "application/pdf"))]) == (
        "[E904] file 'long.pdf' has 3 pages, more than the limit of 2 (ANNORAY_DOCUMENTS__MAX_PAGES); split it")


def test_an_upload_is_held_to_its_pixel_budgets_and_file_count_before_a_page_is_drawn(api: Api, visual: int) -> None:
    upload = f"/api/projects/{visual}/files"
    pages = [Image.new("1", (37, 37), 1) for _ in range(200)]  # 200 pages of 3,700 points a side, in a few KB
    out = io.BytesIO()
    pages[0].save(out, format="PDF", save_all=True, append_images=pages[1:], resolution=0.72)
    hostile = out.getvalue()
    assert len(hostile) < 200_000
    body = refused(api, lambda: api.admin.post(upload, files=[("file", ("tiny.pdf", hostile, "application/pdf"))]), 422)
    assert body["detail"].startswith("[E911] file 'tiny.pdf' renders to 11,882,652,800 pixels, more than the budget of 500,000,000") and "MAX_PIXELS_PER_FILE" in body["detail"]
    assert stored_files(api) == [], "refused from its header: no page drawn"

    api.settings.documents.max_pixels_per_request = 50 * 50 * 3  # the live app's settings
    three = [("file", (f"{i}.png", image_bytes(50, 50), "image/png")) for i in range(3)]
    assert api.admin.post(upload, files=three).status_code == 201
    body = refused(api, lambda: api.admin.post(upload, files=[*three, ("file", ("4.png", image_bytes(50, 50), "image/png"))]), 422)
    assert body["detail"] == ("[E912] the upload renders to 10,000 pixels, more than the budget of 7,500 per request "
                              "(ANNORAY_DOCUMENTS__MAX_PIXELS_PER_REQUEST): send its files in several requests")
    api.settings.documents.max_files = 2
    body = refused(api, lambda: api.admin.post(upload, files=three), 422)
    assert body["detail"].startswith("[E910] the upload carries 3 files, more than the 2 one request may")


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` pixels, with (almost) no image data: a decompression bomb's shape."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))


def test_an_upload_over_the_body_limit_is_refused_before_it_is_read(settings, engine, tmp_path: Path) -> None:
    from annoray.api.app import create_app
    from annoray.api.server import BackgroundServer

    small = settings.model_copy(update={"api": settings.api.model_copy(update={"max_body_bytes": 10_000})})
    with BackgroundServer(create_app(small, engine=engine)) as url:
        admin = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {settings.admin_token_path.read_text().strip()}"})
        api = Api(url, admin, engine, settings=small)
        pid = admin.post("/api/projects", json={"name": "forms", "labeling_config": VISUAL_CONFIG}).json()["id"]
        body = refused(api, lambda: admin.post(f"/api/projects/{pid}/files",
                                               files=[("file", ("large.png", image_bytes(400, 400) + b"\0" * 20_000, "image/png"))]), 413)
        assert body["detail"].startswith("[E505] the request body is") and stored_files(api) == []


def test_tasks_must_point_at_the_projects_pages_and_rectangles_must_fit_the_page(api: Api, visual: int) -> None:
    item = api.admin.post(f"/api/projects/{visual}/files", files=[("file", ("a.png", image_bytes(200, 100), "image/png"))]).json()
    url = item["items"][0]["pages"][0]["url"]
    other = api.admin.post("/api/projects", json={"name": "other", "labeling_config": VISUAL_CONFIG}).json()["id"]
    foreign = api.admin.post(f"/api/projects/{other}/files", files=[("file", ("b.png", image_bytes(20, 20), "image/png"))]).json()
    before = stored_files(api)

    def region(x: float, width: float) -> list[dict]:
        box = {"x": x, "y": 10, "width": width, "height": 20, "rotation": 0}
        return [{"id": "r1", "from_name": "bbox", "to_name": "image", "type": "rectangle", "value": box,
                 "original_width": 200, "original_height": 100},
                {"id": "r1", "from_name": "label", "to_name": "image", "type": "labels", "value": box | {"labels": ["Vendor"]}},
                {"id": "r1", "from_name": "transcription", "to_name": "image", "type": "textarea", "value": box | {"text": ["ACME"]}}]

    task = {"data": {"ocr": f"http://annotate.example.com{url}"}, "annotations": [{"result": region(10, 30)}]}
    imported = api.admin.post(f"/api/projects/{visual}/tasks/import", json=[task])
    assert imported.status_code == 201, imported.text
    for bad, expected in ((foreign["items"][0]["pages"][0]["url"], "[E219] image '/api/files/"),
                          ("https://elsewhere.example.com/scan.png", "[E219] image 'https://elsewhere.example.com/scan.png'"),
                          (url.replace("/pages/1", "/pages/2"), "[E219]")):
        body = refused(api, lambda bad=bad: api.admin.post(f"/api/projects/{visual}/tasks/import", json=[{"data": {"ocr": bad}}]), 422)
        assert body["errors"][0]["message"].startswith(expected) and body["errors"][0]["field"] == "[0].data.ocr", body
    body = refused(api, lambda: api.admin.post(f"/api/projects/{visual}/tasks/import",
                                               json=[{"data": {"ocr": url}, "annotations": [{"result": region(90, 30)}]}]), 422)
    assert body["errors"][0]["message"] == (
        "[E218] result item 0: a rectangle needs numbers x, y, width and height in percent of the page (0 to 100, inside it); "
        "got x 90, y 10, width 30, height 20")
    assert stored_files(api) == before


def test_words_from_an_ocr_of_ones_own_make_the_page_ready_to_train(api: Api, visual: int) -> None:
    item = api.admin.post(f"/api/projects/{visual}/files", files=[("file", ("a.png", image_bytes(200, 100), "image/png"))]).json()
    page = item["items"][0]["pages"][0]
    box = {"x": 5, "y": 10, "width": 40, "height": 20, "rotation": 0}
    region = [{"id": "r1", "from_name": "label", "to_name": "image", "type": "rectanglelabels",
               "value": box | {"rectanglelabels": ["Vendor"]}, "original_width": 200, "original_height": 100}]
    api.admin.post(f"/api/projects/{visual}/tasks/import", json=[{"data": {"ocr": page["url"]}, "annotations": [{"result": region}]}])
    words = {"words": [{"text": "ACME", "box": [12, 12, 80, 28], "line": 0}, {"text": "Invoice", "box": [120, 12, 190, 28], "line": 0},
                       {"text": "no.", "box": [120, 40, 150, 60], "block": 1, "line": 1}]}
    ocr = f"{page['url']}/ocr"

    for bad, where in (({"words": [words["words"][0] | {"box": [12, 12, 280, 28]}]}, "[E909] word 0 ('ACME'): its box [12, 12, 280, 28]"),
                       ({"words": [words["words"][0] | {"box": [80, 12, 12, 28]}]}, "[E909] word 0"),
                       ({"words": [words["words"][0] | {"text": "  "}]}, "words.0.text"),
                       ({"words": [words["words"][0] | {"confidence": 0.9}]}, "words.0.confidence")):
        body = refused(api, lambda bad=bad: api.admin.put(ocr, json=bad), 422)
        assert where in body["detail"] + json.dumps(body["errors"]), body
    annotator = api.user("ann")
    api.admin.post(f"/api/projects/{visual}/members", json={"username": "ann", "role": "annotator"})
    assert refused(api, lambda: annotator.put(ocr, json=words), 403)["detail"].startswith("[E402] role 'annotator' may not")

    done = api.admin.put(ocr, json=words)
    assert done.status_code == 200, done.text
    assert (done.json()["ocr"], done.json()["word_count"], done.json()["words"][2]) == (
        "done", 3, {"text": "no.", "box": [120, 40, 150, 60], "block": 1, "line": 1})
    assert api.admin.get(ocr).json() == done.json()
    data = api.admin.get(f"/api/projects/{visual}/training-data").json()
    assert data["kinds"]["visual_ner"]["label_counts"]["Vendor"] == 1, data  # the word inside the region, tagged
    again = api.admin.put(ocr, json={"words": words["words"][1:]})  # words replace words
    assert again.json()["word_count"] == 2
