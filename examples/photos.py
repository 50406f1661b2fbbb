"""Draws a small catalogue of product photos (bags, shoes, mugs in several colours) for the README walkthrough.

Writes examples/photos/*.png, examples/photos/photos.jsonl (id, image path, category, colour, price) and
examples/photos/query.jpg: a re-shot of the red bag (smaller, cropped, re-compressed, darker).
"""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image, ImageDraw, ImageEnhance

OUT = Path(__file__).with_name("photos")
COLOURS = {"red": (200, 30, 40), "blue": (40, 70, 200), "green": (40, 150, 70), "black": (25, 25, 25)}
PRICES = {"bag": 79.0, "shoe": 59.0, "mug": 12.0}


def draw(kind: str, rgb: tuple[int, int, int]) -> Image.Image:
    image = Image.new("RGB", (320, 320), (245, 245, 245))
    d = ImageDraw.Draw(image)
    if kind == "bag":
        d.polygon([(70, 130), (250, 130), (280, 290), (40, 290)], fill=rgb)
        d.arc((110, 50, 210, 190), 180, 360, fill=rgb, width=14)
    elif kind == "shoe":
        d.ellipse((30, 170, 300, 270), fill=rgb)
        d.rectangle((40, 120, 150, 230), fill=rgb)
        d.line((60, 140, 140, 140), fill=(250, 250, 250), width=6)
    else:
        d.rectangle((90, 90, 220, 270), fill=rgb)
        d.ellipse((200, 130, 270, 220), outline=rgb, width=16)
    return image


def main() -> None:
    OUT.mkdir(exist_ok=True)
    with (OUT / "photos.jsonl").open("w") as rows:
        for kind, price in PRICES.items():
            for colour, rgb in COLOURS.items():
                name = f"{colour}-{kind}"
                draw(kind, rgb).save(OUT / f"{name}.png")
                row = {"id": name, "image": f"{name}.png", "category": f"{kind}s", "colour": colour, "price": price}
                rows.write(json.dumps(row) + "\n")
    query = draw("bag", COLOURS["red"]).crop((16, 16, 304, 304)).resize((200, 200))
    ImageEnhance.Brightness(query).enhance(0.8).save(OUT / "query.jpg", quality=60)
    print(f"wrote {len(PRICES) * len(COLOURS)} photos and query.jpg to {OUT}")


if __name__ == "__main__":
    main()
