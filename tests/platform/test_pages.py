"""Which OCR words an annotator's rectangles cover, and page addresses."""

import pytest

from annoray.platform.labeling.datasets import bio_spans
from annoray.platform.labeling.pages import page_ref, page_url, rectangle_pixels, tag_words

WORDS = [["ACME", 10, 10, 60, 30, 0, 0], ["Corp", 65, 10, 110, 30, 0, 0],
         ["Total:", 10, 100, 70, 120, 1, 1], ["12.50", 80, 100, 130, 120, 1, 1]]


def test_a_word_takes_the_label_of_the_rectangle_holding_at_least_half_of_it() -> None:
    vendor = ("Vendor", (5, 5, 90, 35))  # all of ACME, a little more than half of Corp (65-90 of 65-110: 25/45)
    total = ("Total", (100, 95, 140, 125))  # 12.50 from x 100: 30 of its 50 pixels
    caption = ("Total", (0, 0, 5, 5))  # holds no word
    tags, empty, overlapping = tag_words(WORDS, [vendor, total, caption, ("Vendor", (0, 0, 200, 200))])
    assert tags == ["B-Vendor", "I-Vendor", "O", "B-Total"]
    assert (empty, overlapping) == ([2], [3]), "a region with no word, and one over words already labeled, are named"
    assert bio_spans(tags) == [(0, 2, "Vendor"), (3, 4, "Total")]
    assert bio_spans(["I-A", "I-A", "O", "B-A", "B-A"]) == [(0, 2, "A"), (3, 4, "A"), (4, 5, "A")]


def test_rectangles_in_percent_become_pixels_and_a_rotated_one_the_box_holding_it() -> None:
    assert rectangle_pixels({"x": 10, "y": 20, "width": 50, "height": 25}, 200, 400) == (20, 80, 120, 180)
    x0, y0, x1, y1 = rectangle_pixels({"x": 50, "y": 50, "width": 10, "height": 10, "rotation": 90}, 100, 100)
    assert (round(x0), round(y0), round(x1), round(y1)) == (40, 50, 50, 60), "turned about its top-left corner"


@pytest.mark.parametrize("url,ref", [("/api/files/3/pages/2", (3, 2)), ("https://ls.example.com/api/files/3/pages/2?x=1", (3, 2)),
                                     ("/api/files/3/pages/", None), ("s3://bucket/scan.png", None), ("", None)])
def test_a_page_address_relative_or_on_any_host(url: str, ref: tuple | None) -> None:
    assert page_ref(url) == ref
    assert page_ref(page_url(7, 1)) == (7, 1)
