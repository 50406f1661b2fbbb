"""Images as the API takes them: bytes in a multipart upload, or base64 inside JSON."""

from __future__ import annotations

import base64
import os
from typing import IO

Image = bytes | str | os.PathLike[str] | IO[bytes]
"""Image content: bytes, an open binary file, or a path to a JPEG/PNG/WebP file (a str is a path)."""


def image_bytes(image: Image) -> bytes:
    if isinstance(image, bytes):
        return image
    if isinstance(image, str | os.PathLike):
        with open(image, "rb") as f:
            return f.read()
    return image.read()


def image_base64(image: Image) -> str:
    return base64.b64encode(image_bytes(image)).decode()
