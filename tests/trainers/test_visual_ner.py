"""What the Visual NER engine and the platform's OCR give a page: each word's gaps to its neighbours on the page, and
the words of a low-resolution scan, read upscaled, in the page's own pixels."""

import io
from importlib import resources

import spacy
from PIL import Image

from annoray.trainers.ocr import ocr_words
from annoray.trainers.visual_ner import page_doc

FORMS = resources.files("annoray.platform") / "samples" / "forms"


def test_each_word_carries_the_gaps_to_its_left_above_and_right_and_the_word_above() -> None:
    words = [["Date:", 10, 100, 60, 112, 0, 0], ["12/3/98", 200, 100, 270, 112, 1, 1],  # far from its caption, OCR'd apart
             ["Total", 10, 130, 50, 142, 0, 2], ["due", 54, 130, 80, 142, 0, 2],  # below, and close on its row
             ["$1,250", 205, 160, 260, 172, 1, 3]]  # a value under a value, with nothing on its row
    doc = page_doc(spacy.blank("en"), words, 400, 300)
    # buckets in heights of the usual word (12 px): 0 under 0.6, 1 under 1.5, 2 under 4, 3 beyond, n none; C: a caption on the left
    assert [t.dep_ for t in doc] == ["nn3", "3nnC", "n20", "02n", "n3n"]
    assert [t.lemma_ for t in doc] == ["s0FL", "s0FL", "s0F", "s0L", "s0FL"], "the line's shape as before (older models read it)"
    assert [t.ent_id_ for t in doc] == ["-", "-", "date:", "date:", "00/0/00"], "the nearest word above, digits as 0"


def test_a_low_resolution_scan_is_read_upscaled_with_boxes_in_its_own_pixels() -> None:
    form = Image.open(io.BytesIO((FORMS / "form-001.png").read_bytes()))
    small = form.resize((round(form.width * 0.4), round(form.height * 0.4)), Image.Resampling.LANCZOS)  # about 40 dpi
    png = io.BytesIO()
    small.save(png, format="PNG")
    as_uploaded = ocr_words(png.getvalue(), "en", upscale_below=0)
    upscaled = ocr_words(png.getvalue(), "en", upscale_below=1500)
    expected = {"Contoso", "Station", "Lane", "Riverton", "INV-587814", "cartridge", "1,026.00", "business."}
    assert expected <= {w[0] for w in upscaled}, upscaled
    assert len(expected & {w[0] for w in as_uploaded}) < len(expected) // 2, as_uploaded
    assert all(0 <= x0 <= x1 <= small.width and 0 <= y0 <= y1 <= small.height for _, x0, y0, x1, y1, *_ in upscaled)
