"""The model-free image embedder finds edited copies of product photos; image decoding refuses what it should."""

from __future__ import annotations

import contextlib
import io
import random
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, features

from app.core.errors import ImageTooLarge, InvalidImage, InvalidInput
from app.embedding.image_features import ImageFeatureEmbedder
from app.embedding.images import decode_image
from tests.support.product_images import encode, product_image, transformed_copy

N_INDEX, N_QUERIES = 300, 80


@pytest.mark.slow
def test_edited_copy_finds_its_original_first() -> None:
    embedder = ImageFeatureEmbedder()
    originals = [product_image(seed) for seed in range(N_INDEX)]
    index = embedder.embed_images([encode(img) for img in originals])
    queries = embedder.embed_images([transformed_copy(originals[i], seed=10_000 + i) for i in range(N_QUERIES)])

    assert index.shape == (N_INDEX, embedder.dim) and index.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(index, axis=1), 1.0, rtol=1e-5)
    top1 = (queries @ index.T).argmax(axis=1)
    rate = float(np.mean(top1 == np.arange(N_QUERIES)))
    print(f"top-1: {rate:.3f} of {N_QUERIES} edited copies among {N_INDEX} originals")
    assert rate >= 0.95


def test_embedding_is_deterministic_and_empty_batch_is_empty() -> None:
    embedder = ImageFeatureEmbedder()
    data = [encode(product_image(seed)) for seed in range(3)]
    np.testing.assert_array_equal(embedder.embed_images(data), embedder.embed_images(data))
    assert embedder.embed_images([]).shape == (0, embedder.dim)


def test_broken_image_in_a_batch_is_invalid_input() -> None:
    with pytest.raises(InvalidImage):
        ImageFeatureEmbedder().embed_images([encode(product_image(0)), b"not an image"])


def test_alpha_is_flattened_onto_white() -> None:
    img = Image.new("RGBA", (8, 8), (255, 0, 0, 0))
    img.putpixel((0, 0), (255, 0, 0, 255))
    out = decode_image(encode(img))
    assert out.mode == "RGB"
    assert out.getpixel((0, 0)) == (255, 0, 0)
    assert out.getpixel((5, 5)) == (255, 255, 255)


def test_palette_transparency_is_flattened_onto_white() -> None:
    img = Image.new("P", (4, 4), 1)
    img.putpalette([0, 0, 0, 0, 255, 0])
    out = decode_image(encode(img, transparency=1))
    assert out.getpixel((1, 1)) == (255, 255, 255)


def test_exif_rotation_is_applied() -> None:
    img = Image.new("RGB", (40, 20), (200, 30, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    out = decode_image(encode(img, "JPEG", exif=exif))
    assert out.size == (20, 40)


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "TIFF"])
def test_other_formats_are_refused_by_name(fmt: str) -> None:
    with pytest.raises(InvalidImage, match=fmt):
        decode_image(encode(Image.new("RGB", (8, 8)), fmt))


@pytest.mark.parametrize("data", [b"", b"garbage bytes", b"\x89PNG\r\n\x1a\n" + b"\0" * 40])
def test_unreadable_bytes_are_invalid(data: bytes) -> None:
    with pytest.raises(InvalidImage):
        decode_image(data)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_corrupted_bytes_decode_or_raise_invalid_input(fmt: str) -> None:
    """Never anything but an image or InvalidInput (a 4xx): bad bytes must not become a 500."""
    data = encode(product_image(4).resize((48, 48)), fmt)
    rng = random.Random(fmt)
    for _ in range(200):
        mutated = bytearray(data[: rng.randrange(len(data) // 2, len(data) + 1)])
        for _ in range(rng.randint(1, 8)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        with contextlib.suppress(InvalidInput):
            assert decode_image(bytes(mutated)).mode == "RGB"


def test_truncated_jpeg_is_invalid() -> None:
    data = encode(product_image(1), "JPEG", quality=90)
    with pytest.raises(InvalidImage, match="JPEG"):
        decode_image(data[: len(data) // 2])


def test_too_many_bytes_is_too_large() -> None:
    data = encode(product_image(2))
    with pytest.raises(ImageTooLarge, match=str(len(data))):
        decode_image(data, max_bytes=len(data) - 1)


def _png_bomb(width: int, height: int) -> bytes:
    """A real, valid all-black 1-bit PNG: a few hundred KB that would decode to width × height pixels."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    row = b"\0" * (1 + (width + 7) // 8)  # filter byte + packed bits
    idat = zlib.compress(row * height, 9)
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_decompression_bomb_is_refused_before_decoding() -> None:
    bomb = _png_bomb(20_000, 20_000)
    assert len(bomb) < 1_000_000
    with pytest.raises(ImageTooLarge):
        decode_image(bomb)
    # Below Pillow's own ceiling, our limit is what refuses it, and the message says by how much.
    with pytest.raises(ImageTooLarge, match="5000×4000"):
        decode_image(_png_bomb(5_000, 4_000), max_pixels=1_000_000)


def test_pixel_limit_allows_images_at_the_limit() -> None:
    assert decode_image(encode(Image.new("RGB", (100, 10))), max_pixels=1_000).size == (100, 10)


@pytest.mark.skipif(not features.check("webp"), reason="Pillow built without WebP")
def test_webp_round_trip() -> None:
    img = product_image(3)
    out = decode_image(encode(img, "WEBP", lossless=True))
    assert out.size == img.size and out.mode == "RGB"
    assert np.array_equal(np.asarray(out), np.asarray(img))


def test_sixteen_bit_grey_png_keeps_its_levels() -> None:
    img = Image.fromarray(np.full((4, 4), 32768, dtype=np.uint16))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    assert decode_image(buf.getvalue()).getpixel((0, 0)) == (128, 128, 128)
