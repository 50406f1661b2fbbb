"""Decode untrusted image bytes safely: JPEG, PNG and WebP only, bounded in bytes and pixels, upright, RGB."""

from __future__ import annotations

import contextlib
import functools
import io
import struct
import threading
import zlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from app.core.errors import ImageTooLarge, InvalidImage, Overloaded

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["ALLOWED_FORMATS", "ImageTooLarge", "InvalidImage", "decode_image"]

# MPO is how Pillow names the multi-picture JPEG files that many phone cameras write: still a JPEG to the user.
ALLOWED_FORMATS = {"JPEG": "JPEG", "MPO": "JPEG", "PNG": "PNG", "WEBP": "WebP"}

# What Pillow raises for malformed files. Listed, not `Exception`, so a bug in our own code stays a 500.
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, IndexError, struct.error, zlib.error)


def decode_image(
    data: bytes,
    *,
    max_bytes: int = 10_000_000,
    max_pixels: int = 40_000_000,
    draft_size: tuple[int, int] | None = None,
) -> Image.Image:
    """Bytes → an upright RGB image, with alpha flattened onto white; InvalidImage or ImageTooLarge otherwise.

    `draft_size` lets a JPEG decode at 1/2, 1/4 or 1/8 scale (never below that size): a caller that only needs a
    thumbnail skips most of the decoding work on a large photo.
    """
    from PIL import Image, ImageOps

    _pillow()
    if len(data) > max_bytes:
        raise ImageTooLarge(f"image is {len(data)} bytes; the limit is {max_bytes}", size=len(data), limit=max_bytes)
    if not data:
        raise InvalidImage("image is empty")
    try:
        # Image.open reads only the header, so the format and size are checked before any pixel is decoded.
        img = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:  # Pillow's own ceiling (2 × MAX_IMAGE_PIXELS) came first
        raise ImageTooLarge(f"image has too many pixels: {exc}", limit=max_pixels) from None
    except _DECODE_ERRORS:
        raise InvalidImage("not a readable image: send the bytes of a JPEG, PNG or WebP file") from None
    fmt = img.format
    if fmt not in ALLOWED_FORMATS:
        raise InvalidImage(f"image format {fmt} is not accepted; send JPEG, PNG or WebP", format=fmt)
    width, height = img.size
    # Checked here, not through Image.MAX_IMAGE_PIXELS: that global is process-wide and its warning filter is not
    # thread-safe to change per call. The default limit sits below Pillow's warning threshold, so it never fires.
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"image is {width}×{height} = {width * height} pixels; the limit is {max_pixels}",
            width=width,
            height=height,
            limit=max_pixels,
        )
    try:
        with DECODING.share(width * height):
            if draft_size is not None and fmt in ("JPEG", "MPO"):
                img.draft("RGB", draft_size)
            img.load()  # a truncated or corrupt file fails here, not later inside the embedder
            img = ImageOps.exif_transpose(img)  # phones store a rotation flag instead of rotating the pixels
            return _flatten_to_rgb(img)
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(f"image has too many pixels: {exc}", limit=max_pixels) from None
    except _DECODE_ERRORS as exc:
        raise InvalidImage(f"broken {ALLOWED_FORMATS[fmt]} image: {exc}", format=fmt) from None


class PixelBudget:
    """At most `budget` pixels being decoded at once, process-wide: decoding holds ~7 bytes per pixel (the
    file's mode, then RGB), so four 40-megapixel photos decoded together would take over a gigabyte. Others
    wait their turn; one that waits longer than `wait_s` gets a 429. An image larger than the whole budget
    still decodes, alone."""

    def __init__(self, budget: int, wait_s: float) -> None:
        self.budget, self.wait_s = budget, wait_s
        self.in_use = 0
        self._changed = threading.Condition()

    @contextlib.contextmanager
    def share(self, pixels: int) -> Iterator[None]:
        with self._changed:
            if not self._changed.wait_for(
                lambda: self.in_use == 0 or self.in_use + pixels <= self.budget, timeout=self.wait_s
            ):
                raise Overloaded(
                    f"too many images are being decoded; retry in a moment ({pixels} pixels waited "
                    f"{self.wait_s:.0f} s)",
                    retry_after=1,
                )
            self.in_use += pixels
        try:
            yield
        finally:
            with self._changed:
                self.in_use -= pixels
                self._changed.notify_all()


# One of the largest images the defaults accept at a time (a 40 MP RGBA PNG peaks near 620 MiB decoded), any
# number of ordinary photos side by side.
DECODING = PixelBudget(budget=40_000_000, wait_s=30.0)
# Pillow allocates pixels in 16 MiB blocks by default. glibc serves blocks under 32 MiB from the decoding
# thread's own arena and keeps them when freed, so every worker thread that once decoded a huge image held
# its ~600 MiB for ever (four threads: +2.9 GB of RSS, even with the decodes one at a time). Blocks above
# glibc's largest mmap threshold are mmap'd and go back to the system when the image is freed (+0.97 GB).
PILLOW_BLOCK_BYTES = 64 << 20


@functools.cache
def _pillow() -> None:
    from PIL import Image

    Image.core.set_block_size(PILLOW_BLOCK_BYTES)


def _flatten_to_rgb(img: Image.Image) -> Image.Image:
    """Composite any transparency onto white: product cut-outs sit on white, and black would invert their look."""
    from PIL import Image

    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit greyscale PNG: a plain convert would clip every value above 255 to white.
        img = img.point(lambda v: v / 256).convert("L")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        if rgba.getextrema()[3][0] == 255:  # an alpha channel that hides nothing: two full copies saved
            return rgba.convert("RGB")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")
