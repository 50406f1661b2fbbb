"""Seeded product-like photos (shapes, colours, textures on a background) and the edits a re-upload goes through."""

from __future__ import annotations

import io
import random

from PIL import Image, ImageDraw, ImageEnhance

RGB = tuple[int, int, int]


def _colour(rng: random.Random) -> RGB:
    return rng.randrange(256), rng.randrange(256), rng.randrange(256)


def _background(rng: random.Random) -> RGB:
    # Half of all product shots sit on white or near-white: the hard case, since they share most of their pixels.
    if rng.random() < 0.5:
        level = rng.randrange(225, 256)
        return level, level, level
    return _colour(rng)


def _texture(rng: random.Random, size: tuple[int, int], first: RGB) -> Image.Image:
    """A fill for one shape: plain, stripes (any angle) or a checkerboard."""
    tile = Image.new("RGB", size, first)
    kind = rng.choice(["plain", "plain", "stripes", "checker"])
    if kind == "plain":
        return tile
    second, period = _colour(rng), rng.randrange(6, 24)
    draw = ImageDraw.Draw(tile)
    if kind == "stripes":
        big = 2 * max(size)
        stripes = Image.new("RGB", (big, big), first)
        stripe_draw = ImageDraw.Draw(stripes)
        for x in range(0, big, period):
            stripe_draw.rectangle((x, 0, x + period // 2, big), fill=second)
        stripes = stripes.rotate(rng.uniform(0, 180))
        # The centre of the rotated square is covered everywhere; its corners are not.
        left, top = (big - size[0]) // 2, (big - size[1]) // 2
        return stripes.crop((left, top, left + size[0], top + size[1]))
    for y in range(0, size[1], period):
        for x in range((y // period) % 2 * period, size[0], 2 * period):
            draw.rectangle((x, y, x + period - 1, y + period - 1), fill=second)
    return tile


def product_image(seed: int) -> Image.Image:
    """One image, the same for the same seed: 200–320 px a side, 1–3 shapes (rectangle, ellipse, polygon)."""
    rng = random.Random(seed)
    size = rng.randrange(200, 321), rng.randrange(200, 321)
    img = Image.new("RGB", size, _background(rng))
    for _ in range(rng.randint(1, 3)):
        w, h = rng.randrange(size[0] // 5, size[0] * 4 // 5), rng.randrange(size[1] // 5, size[1] * 4 // 5)
        x0, y0 = rng.randrange(0, size[0] - w), rng.randrange(0, size[1] - h)
        box = (x0, y0, x0 + w, y0 + h)
        mask = Image.new("L", size, 0)
        mask_draw = ImageDraw.Draw(mask)
        shape = rng.choice(["rectangle", "ellipse", "polygon"])
        if shape == "rectangle":
            mask_draw.rectangle(box, fill=255)
        elif shape == "ellipse":
            mask_draw.ellipse(box, fill=255)
        else:
            points = [(rng.uniform(box[0], box[2]), rng.uniform(box[1], box[3])) for _ in range(rng.randint(3, 6))]
            mask_draw.polygon(points, fill=255)
        img.paste(_texture(rng, size, _colour(rng)), (0, 0), mask)
    return img


def encode(img: Image.Image, fmt: str = "PNG", **options: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **options)
    return buf.getvalue()


def transformed_copy(img: Image.Image, seed: int) -> bytes:
    """A re-upload of `img`: scaled to 60–90%, 10% of each side's length cropped off (split at random between the
    two edges), brightness ×0.8–1.2, saved as JPEG quality 60."""
    rng = random.Random(seed)
    scale = rng.uniform(0.6, 0.9)
    out = img.resize((round(img.width * scale), round(img.height * scale)), Image.Resampling.LANCZOS)
    cut_w, cut_h = round(out.width * 0.1), round(out.height * 0.1)
    left, top = rng.randint(0, cut_w), rng.randint(0, cut_h)
    out = out.crop((left, top, out.width - (cut_w - left), out.height - (cut_h - top)))
    out = ImageEnhance.Brightness(out).enhance(rng.uniform(0.8, 1.2))
    return encode(out, "JPEG", quality=60)
