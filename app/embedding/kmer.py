"""KmerEmbedder: DNA or protein sequences as L2-normalised k-mer count vectors, no model needed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import numpy as np

from app.core.errors import InvalidInput

ALPHABETS = {"dna": "ACGT", "protein": "ACDEFGHIKLMNPQRSTVWY"}
MAX_DENSE_DIM = 4096
DEFAULT_BUCKETS = 4096
# Fibonacci hashing: 2**64 / golden ratio. Multiplying spreads nearby codes over the high bits, where a
# plain `code % buckets` would keep only the last few letters of a k-mer (4096 = 4**6 for DNA).
HASH_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)
_INVALID = 255
# Bound the scratch memory of one counting pass (int64 codes, and the rows × dim count table).
_CHUNK_SYMBOLS = 1 << 20
_CHUNK_CELLS = 1 << 22


def hash_buckets(codes: np.ndarray, buckets: int) -> np.ndarray:
    """Bucket of each k-mer code: ((code × HASH_MULTIPLIER) mod 2**64 >> 32) mod buckets. Stable across processes."""
    with np.errstate(over="ignore"):  # the wrap-around modulo 2**64 is the point
        mixed = codes.astype(np.uint64) * HASH_MULTIPLIER
    return ((mixed >> np.uint64(32)) % np.uint64(buckets)).astype(np.int64)


class KmerEmbedder:
    """Counts overlapping k-mers; `dim` is alphabet_size**k when that is ≤ 4096, else k-mers hash into buckets.

    DNA accepts A, C, G, T and U (read as T, so RNA embeds like its DNA); protein accepts the 20 standard
    amino acids. Both are case-insensitive. Anything else (N, X, gaps, whitespace, FASTA headers) is
    rejected rather than skipped, so callers notice masked or ambiguous data instead of embedding less of it.
    """

    kind = "kmer"
    modalities = ("sequence",)

    def __init__(
        self,
        k: int = 4,
        alphabet: Literal["dna", "protein"] = "dna",
        buckets: int | None = None,
        max_length: int = 100_000,
    ) -> None:
        if alphabet not in ALPHABETS:
            raise ValueError(f"alphabet must be dna or protein, not {alphabet!r}")
        if not 1 <= k <= 12:  # 20**12 still fits the int64 code of one k-mer
            raise ValueError(f"k must be between 1 and 12, not {k}")
        if buckets is not None and buckets < 16:
            raise ValueError(f"buckets must be at least 16, not {buckets}")
        if max_length < k:
            raise ValueError(f"max_length ({max_length}) must be at least k ({k})")
        letters = ALPHABETS[alphabet]
        self.k, self.alphabet, self.max_length = k, alphabet, max_length
        self._base = len(letters)
        self.hashed = buckets is not None or self._base**k > MAX_DENSE_DIM
        self.dim = (buckets or DEFAULT_BUCKETS) if self.hashed else self._base**k
        self._lut = np.full(256, _INVALID, dtype=np.uint8)
        for code, letter in enumerate(letters):
            self._lut[ord(letter)] = self._lut[ord(letter.lower())] = code
        if alphabet == "dna":
            self._lut[ord("U")] = self._lut[ord("u")] = letters.index("T")

    def embed_sequences(self, sequences: list[str]) -> np.ndarray:
        symbols = [self._encode(i, seq) for i, seq in enumerate(sequences)]  # validate all before any work
        out = np.empty((len(symbols), self.dim), dtype=np.float32)
        for start, stop in self._chunks([len(s) for s in symbols]):
            out[start:stop] = self._count(symbols[start:stop])
        out /= np.linalg.norm(out, axis=1, keepdims=True)  # never zero: every sequence has ≥ 1 k-mer
        return out

    def _encode(self, index: int, seq: str) -> np.ndarray:
        if not isinstance(seq, str):
            raise InvalidInput(f"sequence {index} is not a string", index=index)
        if not seq:
            raise InvalidInput(f"sequence {index} is empty", index=index)
        if len(seq) < self.k:
            raise InvalidInput(f"sequence {index} has {len(seq)} letters, fewer than k={self.k}", index=index)
        if len(seq) > self.max_length:
            raise InvalidInput(
                f"sequence {index} has {len(seq)} letters, more than the limit {self.max_length}",
                index=index,
                max_length=self.max_length,
            )
        # "replace" turns each non-ASCII character into one '?', so byte positions stay character positions.
        symbols = self._lut[np.frombuffer(seq.encode("ascii", "replace"), dtype=np.uint8)]
        bad = np.flatnonzero(symbols == _INVALID)
        if bad.size:
            pos = int(bad[0])
            raise InvalidInput(
                f"sequence {index} has invalid character {seq[pos]!r} at position {pos}: "
                f"a {self.alphabet} sequence uses only {ALPHABETS[self.alphabet]} (any case)",
                index=index,
                position=pos,
                character=seq[pos],
            )
        return symbols

    def _chunks(self, lengths: list[int]) -> Iterator[tuple[int, int]]:
        start, symbols = 0, 0
        for i, length in enumerate(lengths):
            if i > start and (symbols + length > _CHUNK_SYMBOLS or (i - start + 1) * self.dim > _CHUNK_CELLS):
                yield start, i
                start, symbols = i, 0
            symbols += length
        if start < len(lengths):
            yield start, len(lengths)

    def _count(self, symbols: list[np.ndarray]) -> np.ndarray:
        """One bincount for the whole chunk: concatenate, code every window, drop windows crossing a border."""
        lengths = np.array([len(s) for s in symbols])
        flat = np.concatenate(symbols).astype(np.int64)
        n_windows = len(flat) - self.k + 1
        codes = np.zeros(n_windows, dtype=np.int64)
        for j in range(self.k):  # base-|alphabet| number of each window, built one letter column at a time
            codes = codes * self._base + flat[j : j + n_windows]
        row = np.repeat(np.arange(len(symbols)), lengths)[:n_windows]
        offset = np.arange(n_windows) - np.repeat(np.cumsum(lengths) - lengths, lengths)[:n_windows]
        keep = offset + self.k <= lengths[row]
        cols = hash_buckets(codes[keep], self.dim) if self.hashed else codes[keep]
        counts = np.bincount(row[keep] * self.dim + cols, minlength=len(symbols) * self.dim)
        return counts.reshape(len(symbols), self.dim)
