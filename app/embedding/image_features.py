"""A model-free image embedder: colour, texture and layout features that find near-identical product photos."""

from __future__ import annotations

import functools
import itertools
from typing import NamedTuple

import numpy as np

from app.embedding.images import decode_image

SIDE = 64  # working resolution: 4×4 texture cells of 16 px, and cheap enough for hundreds of images a second
CHUNK = 32  # images per feature pass: small temporaries stay in cache (measured: 2× faster than 500 at once)
_EPS = 1e-6

# (length, weight, norm floor) of each block. A block is scaled to unit length, so its weight is its share of the
# cosine score; but one shorter than its floor has little in it (the edges of a blank photo, the colour of a grey
# one), and blowing it up to full length would match on JPEG noise, so it stays short and the other blocks decide.
# Layout's floor is a grey-level std of 0.02; chroma's a colour cast of about 0.02 (both in units of full scale).
BLOCKS = {
    "colour": (64, 0.25, _EPS),
    "texture": (128, 0.25, 1.0),
    "layout": (256, 0.30, 0.3),
    "chroma": (128, 0.20, 0.2),
}


class ImageFeatureEmbedder:
    """Deterministic, needs only Pillow and numpy; robust to resizing, small crops, re-compression and lighting."""

    kind = "image"
    modalities = ("image",)
    dim = sum(length for length, _, _ in BLOCKS.values())

    def __init__(self, *, max_bytes: int = 10_000_000, max_pixels: int = 40_000_000) -> None:
        self.max_bytes = max_bytes
        self.max_pixels = max_pixels

    def embed_images(self, images: list[bytes]) -> np.ndarray:
        """Encoded images → float32 (n, dim), L2-normalised. A broken or oversized image raises InvalidInput."""
        chunks = [self._embed_chunk(images[i : i + CHUNK]) for i in range(0, len(images), CHUNK)]
        return np.concatenate(chunks) if chunks else np.zeros((0, self.dim), dtype=np.float32)

    def _embed_chunk(self, images: list[bytes]) -> np.ndarray:
        x = np.stack([self._thumbnail(data) for data in images])
        blocks = {"colour": _colour(x), "texture": _texture(x), "layout": _layout(x), "chroma": _chroma(x)}
        parts = [np.sqrt(weight) * _unit(blocks[name], floor) for name, (_, weight, floor) in BLOCKS.items()]
        return _unit(np.concatenate(parts, axis=1)).astype(np.float32)

    def _thumbnail(self, data: bytes) -> np.ndarray:
        from PIL import Image

        img = decode_image(data, max_bytes=self.max_bytes, max_pixels=self.max_pixels, draft_size=(SIDE, SIDE))
        # Stretch to a square instead of centre-cropping: a crop would cut different parts off a photo and its copy.
        img = img.resize((SIDE, SIDE), Image.Resampling.BILINEAR, reducing_gap=3.0)
        return np.asarray(img, dtype=np.float32) / 255.0


def _colour(x: np.ndarray) -> np.ndarray:
    """Each pixel splits its vote by saturation: hue × saturation for its colourful part, and brightness relative to
    the image's mean for its grey part (the hue of grey is noise). Both ignore a uniformly brighter or darker copy."""
    n = len(x)
    x = x.reshape(n, SIDE // 2, 2, SIDE // 2, 2, 3).mean(axis=(2, 4))  # a histogram needs no fine detail: 4× cheaper
    o1, o2, intensity = _opponent(x)
    hue = (np.arctan2(o2, o1) / (2 * np.pi)) % 1.0
    sat = np.clip(np.hypot(o1, o2) / (x.max(axis=-1) + _EPS), 0.0, 1.0)
    chromatic = _histogram([_soft_bins(hue, 12, circular=True), _soft_bins(sat, 4)], sat)
    relative = np.clip(intensity / (2 * intensity.mean(axis=(1, 2), keepdims=True) + _EPS), 0.0, 1.0)
    grey = _histogram([_soft_bins(relative, 16)], 1.0 - sat)
    return _hellinger(np.concatenate([chromatic, grey], axis=1))


def _texture(x: np.ndarray) -> np.ndarray:
    """HOG-like: gradient orientations weighted by magnitude over a 4×4 grid, on grey divided by its mean
    (brightness-invariant); soft cell borders so a small crop moves weight gradually, not across a cliff."""
    grey = x.mean(axis=-1)
    grey = grey / (grey.mean(axis=(1, 2), keepdims=True) + _EPS)
    gy, gx = np.gradient(grey, axis=(1, 2))
    magnitude = np.hypot(gx, gy)
    orientation = (np.arctan2(gy, gx) % np.pi) / np.pi  # unsigned: a dark-on-light edge matches light-on-dark
    coords = (np.arange(SIDE, dtype=np.float32) + 0.5) / SIDE
    dims = [_soft_bins(coords[:, None], 4), _soft_bins(coords, 4), _soft_bins(orientation, 8, circular=True)]
    # Total edge strength under 1 (the JPEG noise of a blank photo; one small shape measures 4 or more) stays short.
    return _hellinger(_histogram(dims, magnitude), floor=1.0)


def _layout(x: np.ndarray) -> np.ndarray:
    """A 16×16 grey thumbnail, mean-subtracted (scaling to unit length then divides by its std): the shape, blind to
    brightness and contrast."""
    n = len(x)
    thumb = x.mean(axis=-1).reshape(n, 16, SIDE // 16, 16, SIDE // 16).mean(axis=(2, 4)).reshape(n, -1)
    return thumb - thumb.mean(axis=1, keepdims=True)


def _chroma(x: np.ndarray) -> np.ndarray:
    """An 8×8 thumbnail of colour divided by intensity (where the colours are, independent of lighting)."""
    n = len(x)
    cell = x.reshape(n, 8, SIDE // 8, 8, SIDE // 8, 3).mean(axis=(2, 4))
    o1, o2, intensity = _opponent(cell)
    # The floor keeps near-black cells, whose colour is mostly sensor noise, from shouting.
    return np.concatenate([o1 / (intensity + 0.05), o2 / (intensity + 0.05)], axis=1).reshape(n, -1)


def _opponent(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Red–green/cyan and yellow–blue axes plus intensity: hue is their angle, chroma their length."""
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    return r - (g + b) / 2, (3**0.5 / 2) * (g - b), (r + g + b) / 3


class _Soft(NamedTuple):
    """Values spread over the two nearest bin centres: `low`/`high` bins with weights summing to one."""

    low: tuple[np.ndarray, np.ndarray]
    high: tuple[np.ndarray, np.ndarray]
    bins: int


def _soft_bins(values: np.ndarray, bins: int, *, circular: bool = False) -> _Soft:
    """Linear assignment of values in [0, 1] to bins, so a small change moves weight gradually, not over a cliff."""
    position = values * bins - 0.5
    low = np.floor(position)
    frac = position - low
    high = low + 1
    if circular:
        low, high = np.where(low < 0, bins - 1, low), np.where(high >= bins, 0, high)
    else:
        low, high = np.clip(low, 0, bins - 1), np.clip(high, 0, bins - 1)
    return _Soft((low.astype(np.intp), 1 - frac), (high.astype(np.intp), frac), bins)


def _histogram(dims: list[_Soft], weight: np.ndarray) -> np.ndarray:
    """A joint soft histogram per image, (n, product of bins), by bincount over every pixel of the batch at once."""
    n = weight.shape[0]
    sizes = [d.bins for d in dims]
    total = int(np.prod(sizes))
    strides = [int(np.prod(sizes[i + 1 :])) for i in range(len(sizes))]
    image_base = (np.arange(n) * total).reshape((n,) + (1,) * (weight.ndim - 1))
    # Scale bins by their stride once, and fold the image offset and the weight into the last dimension: the cell
    # grid's bins come per row or column, so each corner below costs one add and one multiply per pixel.
    scaled = [
        [(bin_ * stride, frac) for bin_, frac in (d.low, d.high)] for d, stride in zip(dims, strides, strict=True)
    ]
    scaled[-1] = [(bin_ + image_base, frac * weight) for bin_, frac in scaled[-1]]
    out = np.zeros(n * total)
    # Each value votes for its two nearest bins in every dimension: 2^len(dims) corners of weighted votes.
    for corners in itertools.product(*scaled):
        index = functools.reduce(np.add, [bin_ for bin_, _ in corners])
        w = functools.reduce(np.multiply, [frac for _, frac in corners])
        index, w = np.broadcast_to(index, weight.shape), np.broadcast_to(w, weight.shape)
        out += np.bincount(index.ravel(), weights=w.ravel(), minlength=n * total)
    return out.reshape(n, total)


def _hellinger(hist: np.ndarray, floor: float = _EPS) -> np.ndarray:
    """Sum to one, then square root: a few dominant bins (a white background) no longer drown the rest. A histogram
    with less than `floor` in it comes out shorter than one."""
    return np.sqrt(hist / np.maximum(hist.sum(axis=1, keepdims=True), floor))


def _unit(v: np.ndarray, floor: float = _EPS) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), floor)
