"""OCR on a real Ray: uploaded pages are OCR'd once each by Tesseract, in Ray tasks the scheduler dispatches, into
words with boxes in reading order; a page photographed sideways (EXIF) is read upright."""

import io
from collections import Counter

import pytest
from PIL import Image, ImageDraw, ImageFont

from ..conftest import VISUAL_CONFIG, Api, sample_forms, wait_for

pytestmark = [pytest.mark.ray, pytest.mark.timeout(300)]

LINES = [("INVOICE", (60, 40)), ("Vendor: Northwind Traders", (60, 140)), ("Total due: 1,250.00 EUR", (60, 220))]


def form(exif_orientation: int | None = None) -> bytes:
    image = Image.new("RGB", (900, 320), "white")
    draw = ImageDraw.Draw(image)
    for text, at in LINES:
        draw.text(at, text, fill="black", font=ImageFont.load_default(size=40))
    out = io.BytesIO()
    if exif_orientation is None:
        image.save(out, format="PNG")
    else:  # stored turned a quarter to the left, with the EXIF tag that says how to turn it back
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        image.rotate(90, expand=True).save(out, format="JPEG", quality=95, exif=exif.tobytes())
    return out.getvalue()


def test_pages_are_ocrd_by_ray_tasks_into_words_with_boxes_lines_and_upright(training_api: Api) -> None:
    api = training_api
    pid = api.admin.post("/api/projects", json={"name": "forms", "labeling_config": VISUAL_CONFIG}).json()["id"]
    files = [("file", ("invoice.png", form(), "image/png")), ("file", ("photo.jpg", form(exif_orientation=6), "image/jpeg"))]
    items = api.admin.post(f"/api/projects/{pid}/files", files=files).json()["items"]
    for item in items:
        shown = wait_for(api, f"/api/files/{item['id']}", lambda f: all(p["ocr"] in ("done", "failed") for p in f["pages"]),
                         timeout=180)
        (page,) = shown["pages"]
        assert (page["ocr"], page["attempts"], page["language"]) == ("done", 1, "en"), page
        assert (page["width"], page["height"]) == (900, 320), "the photo's page is upright"
        ocr = api.admin.get(f"{page['url']}/ocr").json()
        words = [w["text"] for w in ocr["words"]]
        assert words[:4] == ["INVOICE", "Vendor:", "Northwind", "Traders"], words
        assert "1,250.00" in words and len(words) == page["word_count"]
        invoice, vendor = ocr["words"][0], ocr["words"][1]
        assert 50 <= invoice["box"][0] <= 70 and 30 <= invoice["box"][1] <= 60 and invoice["box"][2] > invoice["box"][0]
        assert invoice["line"] == 0 and vendor["line"] == 1 and ocr["words"][3]["line"] == 1, "line numbers in reading order"


def test_sample_forms_uploaded_with_their_gold_regions_become_word_tagged_training_data(training_api: Api) -> None:
    """The bundled synthetic forms: the images uploaded, their Label Studio OCR tasks pointed at the pages; until a
    page is OCR'd its task waits (E316); then every gold region covers the OCR words of its value."""
    api, count = training_api, 6
    pid, tasks, items = sample_forms(api, count)
    early = api.admin.get(f"/api/projects/{pid}/training-data").json()
    waiting = [w for w in early["warnings"] if w.startswith("[E316]")]
    assert waiting or early["kinds"]["visual_ner"]["label_counts"]["Vendor"] == count, early

    for item in items:
        wait_for(api, f"/api/files/{item['id']}", lambda f: f["pages"][0]["ocr"] in ("done", "failed"), timeout=180)
    data = api.admin.get(f"/api/projects/{pid}/training-data").json()
    assert not [w for w in data["warnings"] if w.startswith(("[E313]", "[E314]", "[E316]", "[E317]"))], data["warnings"]
    entities = Counter(r["value"]["labels"][0] for t in tasks for r in t["annotations"][0]["result"] if r["type"] == "labels")
    assert data["kinds"]["visual_ner"]["label_counts"] == dict(entities), "each gold region is one entity over its words"
