"""Draw synthetic invoices with their gold regions: the Visual NER sample anyone may redistribute.

Each form is drawn with Pillow's built-in font (no font files, no downloads) in one of several layouts, with a
vendor, its address, an invoice number, a date and a total, plus text that is none of those (line items, a
footer). Everything follows from the seed, so the same seed draws the same forms. The gold regions are written as
Label Studio OCR annotations: per entity a rectangle, its label and a transcription sharing one region id, in
percent of the page.

    python scripts/make_forms.py [--count 30] [--seed 7] [--out src/annoray/platform/samples/forms]

writes ``form-NNN.png`` and ``tasks.json`` (the tasks' ``data.ocr`` is the image's file name; whoever imports them
uploads the images first and points each task at its page).
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

LABELS = ("Vendor", "Address", "InvoiceNumber", "Date", "Total")
WIDTH, HEIGHT = 850, 1100

VENDORS = ["Northwind Traders", "Contoso Ltd", "Fabrikam Inc", "Tailspin Toys", "Adventure Works", "Litware Systems",
           "Proseware GmbH", "Wingtip Supplies", "Blue Yonder Foods", "Alpine Ski House", "Coho Winery", "Lucerne Publishing"]
STREETS = ["Main Street", "Harbour Road", "Elm Avenue", "Station Lane", "Market Square", "Mill Road", "Park Drive"]
CITIES = ["Springfield", "Riverton", "Lakeside", "Hillcrest", "Bayview", "Oakdale", "Fairport"]
ITEMS = ["Paper A4", "Toner cartridge", "Desk lamp", "Office chair", "Cables", "Service fee", "Shipping", "Notebooks"]
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


class Page:
    """A white page to write on, remembering where each labeled value went."""

    def __init__(self) -> None:
        self.image = Image.new("L", (WIDTH, HEIGHT), 255)
        self.draw = ImageDraw.Draw(self.image)
        self.entities: list[tuple[str, str, tuple[int, int, int, int]]] = []  # label, text, pixel box

    def text(self, at: tuple[int, int], text: str, size: int, label: str | None = None) -> tuple[int, int, int, int]:
        box = self.draw.textbbox(at, text, font=font(size))
        self.draw.text(at, text, fill=0, font=font(size))
        if label:
            self.entities.append((label, text, box))
        return box


def values(rng: random.Random) -> dict[str, Any]:
    day, month, year = rng.randint(1, 28), rng.randint(1, 12), rng.randint(2019, 2026)
    date = rng.choice([f"{day:02d}/{month:02d}/{year}", f"{year}-{month:02d}-{day:02d}", f"{day} {MONTHS[month - 1]} {year}"])
    items = [(rng.choice(ITEMS), rng.randint(1, 9), rng.randint(5, 400) + rng.choice([0, 0.5, 0.99])) for _ in range(rng.randint(2, 5))]
    total = sum(q * p for _, q, p in items)
    return {
        "Vendor": rng.choice(VENDORS),
        "Address": [f"{rng.randint(1, 250)} {rng.choice(STREETS)}", f"{rng.randint(10000, 99999)} {rng.choice(CITIES)}"],
        "InvoiceNumber": rng.choice(["INV-", "No. ", "#", "A"]) + str(rng.randint(10000, 999999)),
        "Date": date,
        "Total": f"{total:,.2f} {rng.choice(['EUR', 'USD', 'GBP'])}",
        "items": items,
    }


def draw_form(rng: random.Random) -> Page:
    """One invoice in one of three layouts: header left or right, the fields as a block or as a table row."""
    v = values(rng)
    page = Page()
    layout = rng.randrange(3)
    size = rng.choice([26, 28, 30, 32])
    left = rng.randint(50, 90)
    right = WIDTH - rng.randint(330, 380)
    vendor_x = left if layout != 1 else right - 40
    page.text((vendor_x, rng.randint(50, 80)), v["Vendor"], size + 10, "Vendor")
    y = 140
    for line in v["Address"]:
        page.text((vendor_x, y), line, size - 6, "Address")
        y += size + 4
    title_x = right if layout != 1 else left
    page.text((title_x, 60), "INVOICE", size + 14)
    fields = [("Invoice no:", "InvoiceNumber"), ("Date:", "Date")]
    rng.shuffle(fields)
    if layout == 2:  # the fields side by side, under their captions
        y = rng.randint(300, 360)
        for i, (caption, label) in enumerate(fields):
            x = left + i * 330
            page.text((x, y), caption.rstrip(":"), size - 8)
            page.text((x, y + size), v[label], size - 4, label)
    else:  # caption and value on one line each
        y = rng.randint(240, 300)
        for caption, label in fields:
            page.text((title_x, y), caption, size - 8)
            page.text((title_x + 170, y), v[label], size - 6, label)
            y += size + 8
    y = rng.randint(470, 520)
    page.text((left, y), "Description", size - 8)
    page.text((left + 420, y), "Qty", size - 8)
    page.text((left + 540, y), "Amount", size - 8)
    page.draw.line((left, y + size, WIDTH - left, y + size), fill=0, width=2)
    y += size + 14
    for name, quantity, price in v["items"]:
        page.text((left, y), name, size - 8)
        page.text((left + 420, y), str(quantity), size - 8)
        page.text((left + 540, y), f"{quantity * price:,.2f}", size - 8)
        y += size + 2
    y += 30
    caption = rng.choice(["Total:", "Amount due:", "Total due:"])
    box = page.text((left + 330, y), caption, size - 2)
    page.text((box[2] + 20, y), v["Total"], size - 2, "Total")
    page.text((left, HEIGHT - 90), rng.choice(["Thank you for your business.", "Payable within 30 days.",
                                                 "Questions? Call our office."]), size - 12)
    return page


def task(page: Page, name: str) -> dict[str, Any]:
    """The form as a Label Studio task with its gold regions (rectangle, label and transcription per entity)."""
    result = []
    for n, (label, text, (x0, y0, x1, y1)) in enumerate(page.entities):
        box = {"x": round(100 * (x0 - 3) / WIDTH, 3), "y": round(100 * (y0 - 3) / HEIGHT, 3),
               "width": round(100 * (x1 - x0 + 6) / WIDTH, 3), "height": round(100 * (y1 - y0 + 6) / HEIGHT, 3), "rotation": 0}
        shared = {"id": f"{name}-{n}", "to_name": "image", "original_width": WIDTH, "original_height": HEIGHT}
        result += [shared | {"from_name": "bbox", "type": "rectangle", "value": box},
                   shared | {"from_name": "label", "type": "labels", "value": box | {"labels": [label]}},
                   shared | {"from_name": "transcription", "type": "textarea", "value": box | {"text": [text]}}]
    return {"data": {"ocr": f"{name}.png"}, "annotations": [{"result": result}]}


CONFIG = """<View>
  <Image name="image" value="$ocr"/>
  <Labels name="label" toName="image">
""" + "".join(f'    <Label value="{label}"/>\n' for label in LABELS) + """  </Labels>
  <Rectangle name="bbox" toName="image" strokeWidth="3"/>
  <TextArea name="transcription" toName="image" editable="true" perRegion="true" rows="2"/>
</View>
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "src/annoray/platform/samples/forms")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)
    tasks = []
    for i in range(args.count):
        page = draw_form(rng)
        name = f"form-{i + 1:03d}"
        page.image.save(args.out / f"{name}.png", optimize=True)
        tasks.append(task(page, name))
    (args.out / "tasks.json").write_text(json.dumps(tasks, indent=1))
    (args.out / "config.xml").write_text(CONFIG)
    print(f"{args.count} forms and their tasks written to {args.out}")


if __name__ == "__main__":
    main()
