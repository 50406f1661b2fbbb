"""Product photos drawn for the demo shop: one silhouette per product type, in the product's colour and material."""

from __future__ import annotations

import io
import random
from collections.abc import Callable

from PIL import Image, ImageDraw, ImageEnhance

RGB = tuple[int, int, int]
SIZE = 256
RGBS: dict[str, RGB] = {
    "red": (200, 35, 45),
    "blue": (40, 75, 200),
    "black": (30, 30, 32),
    "white": (236, 236, 230),
    "green": (45, 140, 70),
    "grey": (125, 128, 132),
    "yellow": (235, 195, 40),
    "pink": (235, 130, 170),
}
Draw = Callable[[ImageDraw.ImageDraw, RGB, RGB], None]  # canvas, body colour, a darker accent


def _shoe(d: ImageDraw.ImageDraw, body: RGB, accent: RGB) -> None:
    d.polygon([(30, 190), (60, 120), (120, 110), (170, 150), (226, 165), (232, 195)], fill=body)
    d.rectangle((28, 190, 234, 208), fill=accent)
    for x in range(80, 130, 14):
        d.line((x, 125, x + 10, 140), fill=(250, 250, 250), width=3)


def _boot(d: ImageDraw.ImageDraw, body: RGB, accent: RGB) -> None:
    d.polygon([(70, 40), (140, 40), (145, 150), (220, 170), (222, 205), (60, 205)], fill=body)
    d.rectangle((56, 205, 226, 222), fill=accent)
    d.line((80, 60, 130, 60), fill=accent, width=4)


def _backpack(d: ImageDraw.ImageDraw, body: RGB, accent: RGB) -> None:
    d.rounded_rectangle((60, 50, 196, 226), radius=30, fill=body)
    d.rounded_rectangle((84, 140, 172, 210), radius=12, fill=accent)
    d.arc((96, 18, 160, 80), 180, 360, fill=accent, width=8)


def _headphones(d: ImageDraw.ImageDraw, body: RGB, accent: RGB) -> None:
    d.arc((48, 36, 208, 196), 180, 360, fill=body, width=16)
    d.rounded_rectangle((36, 110, 84, 190), radius=14, fill=accent)
    d.rounded_rectangle((172, 110, 220, 190), radius=14, fill=accent)


def _charger(d: ImageDraw.ImageDraw, body: RGB, accent: RGB) -> None:
    d.rounded_rectangle((78, 80, 178, 200), radius=16, fill=body)
    d.rectangle((104, 44, 114, 80), fill=accent)
    d.rectangle((142, 44, 152, 80), fill=accent)
    d.line((128, 200, 128, 240), fill=accent, width=6)


def _laptop(d: ImageDraw.ImageDraw, body: RGB, accent: RGB) -> None:
    d.rectangle((56, 50, 200, 150), fill=accent)
    d.rectangle((64, 58, 192, 142), fill=body)
    d.polygon([(36, 160), (220, 160), (236, 190), (20, 190)], fill=accent)


def _watch(d: ImageDraw.ImageDraw, body: RGB, accent: RGB) -> None:
    d.rectangle((104, 20, 152, 236), fill=accent)
    d.rounded_rectangle((84, 84, 172, 172), radius=18, fill=body)
    d.ellipse((104, 104, 152, 152), outline=(250, 250, 250), width=3)


def _coffee_maker(d: ImageDraw.ImageDraw, body: RGB, accent: RGB) -> None:
    d.rectangle((70, 40, 186, 80), fill=body)
    d.rectangle((150, 80, 186, 220), fill=body)
    d.rectangle((60, 210, 196, 226), fill=accent)
    d.polygon([(86, 130), (136, 130), (130, 205), (92, 205)], fill=accent)


def _lamp(d: ImageDraw.ImageDraw, body: RGB, accent: RGB) -> None:
    d.ellipse((70, 206, 170, 232), fill=accent)
    d.line((120, 215, 90, 130), fill=accent, width=8)
    d.line((90, 130, 150, 70), fill=accent, width=8)
    d.polygon([(140, 40), (210, 70), (180, 120)], fill=body)


def _jacket(d: ImageDraw.ImageDraw, body: RGB, accent: RGB) -> None:
    d.polygon([(96, 40), (160, 40), (214, 80), (226, 200), (196, 200), (190, 110), (190, 226), (66, 226),
               (66, 110), (60, 200), (30, 200), (42, 80)], fill=body)  # fmt: skip
    d.line((128, 48, 128, 226), fill=accent, width=4)
    d.polygon([(96, 40), (128, 70), (160, 40)], fill=accent)


SHAPES: dict[str, Draw] = {
    "running shoe": _shoe,
    "hiking boot": _boot,
    "backpack": _backpack,
    "headphones": _headphones,
    "phone charger": _charger,
    "laptop": _laptop,
    "smartwatch": _watch,
    "coffee maker": _coffee_maker,
    "desk lamp": _lamp,
    "rain jacket": _jacket,
}
_TEXTURED = {"mesh", "knit", "canvas", "fabric", "fleece", "gore-tex"}  # drawn with a weave over the colour


def product_picture(kind: str, colour: str, material: str, seed: int) -> Image.Image:
    """A SIZE × SIZE photo: the type's silhouette in its colour on a light background, the same for the same seed.

    Products of one type and colour look alike (an image search finds them together); the seed moves the
    background tone and the lighting a little, as two photo shoots would."""
    rng = random.Random(seed)
    level = rng.randrange(228, 250)
    image = Image.new("RGB", (SIZE, SIZE), (level, level, level - rng.randrange(0, 12)))
    body = RGBS[colour]
    accent = tuple(max(0, c - 70) if sum(body) > 180 else min(255, c + 60) for c in body)
    SHAPES[kind](ImageDraw.Draw(image), body, accent)  # type: ignore[arg-type]
    if material in _TEXTURED:
        weave = ImageDraw.Draw(image)
        for y in range(0, SIZE, 6):
            for x in range((y // 6) % 2 * 3, SIZE, 6):
                if image.getpixel((x, y)) == body:
                    weave.point((x, y), fill=accent)
    return ImageEnhance.Brightness(image).enhance(rng.uniform(0.92, 1.08))


def encode(image: Image.Image, fmt: str = "PNG", **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def reshot(image: Image.Image, seed: int) -> bytes:
    """The same product photographed again: smaller, cropped a little, darker or brighter, a JPEG."""
    rng = random.Random(seed)
    side = round(SIZE * rng.uniform(0.6, 0.85))
    cut = SIZE // 16
    shot = image.crop((cut, cut, SIZE - cut, SIZE - cut)).resize((side, side), Image.Resampling.LANCZOS)
    return encode(ImageEnhance.Brightness(shot).enhance(rng.uniform(0.8, 1.15)), "JPEG", quality=70)
