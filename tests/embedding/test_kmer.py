"""KmerEmbedder: mutated fragments find their source, every bad input is a 4xx, hashing is stable."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from app.core.errors import InvalidInput
from app.embedding.kmer import ALPHABETS, KmerEmbedder, hash_buckets

N_SEQUENCES, LENGTH, N_FRAGMENTS, FRAGMENT, SUBSTITUTION_RATE = 500, 1_000, 50, 300, 0.05


def _random_sequences(letters: str, n: int, length: int, rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, len(letters), size=(n, length))


def _mutated_fragment(source: np.ndarray, base: int, rng: np.random.Generator) -> np.ndarray:
    start = rng.integers(0, len(source) - FRAGMENT + 1)
    fragment = source[start : start + FRAGMENT].copy()
    where = rng.choice(FRAGMENT, size=int(SUBSTITUTION_RATE * FRAGMENT), replace=False)
    # Adding 1..base-1 modulo base always lands on a different letter: a true substitution.
    fragment[where] = (fragment[where] + rng.integers(1, base, size=len(where))) % base
    return fragment


def _as_text(letters: str, rows: np.ndarray) -> list[str]:
    table = np.frombuffer(letters.encode(), dtype=np.uint8)
    return [table[row].tobytes().decode() for row in rows]


@pytest.mark.parametrize(
    ("alphabet", "params", "min_hits"),
    [
        # 4-mers give only 256 dims, about one count each for a 300-letter fragment, so the source's lead is thin:
        # over 20 seeds × 50 fragments 2 of 1,000 came second. Allow one miss in 50 rather than pin a lucky seed.
        ("dna", {"k": 4}, 0.98),
        ("dna", {"k": 8, "buckets": 4096}, 1.0),  # no miss in 1,000; the margin is ≥ 0.2 in cosine
        ("protein", {"k": 2}, 1.0),
        ("protein", {"k": 3}, 1.0),  # 20**3 > 4096: hashed into the default buckets
    ],
)
def test_mutated_fragment_finds_its_source_first(alphabet: str, params: dict[str, Any], min_hits: float) -> None:
    letters = ALPHABETS[alphabet]
    rng = np.random.default_rng(7)
    sources = _random_sequences(letters, N_SEQUENCES, LENGTH, rng)
    picked = rng.choice(N_SEQUENCES, size=N_FRAGMENTS, replace=False)
    fragments = np.stack([_mutated_fragment(sources[i], len(letters), rng) for i in picked])
    embedder = KmerEmbedder(alphabet=alphabet, **params)  # type: ignore[arg-type]
    base = embedder.embed_sequences(_as_text(letters, sources))
    queries = embedder.embed_sequences(_as_text(letters, fragments))
    top1 = np.argmax(queries @ base.T, axis=1)
    assert np.mean(top1 == picked) >= min_hits


def test_vectors_are_normalised_float32_counts() -> None:
    vectors = KmerEmbedder(k=2).embed_sequences(["AAAA", "ACGT"])
    assert vectors.dtype == np.float32 and vectors.shape == (2, 16)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-6)
    assert vectors[0, 0] == pytest.approx(1.0)  # AA three times, nothing else
    # AC, CG, GT once each; codes are base-4 numbers with A=0 C=1 G=2 T=3.
    np.testing.assert_allclose(vectors[1, [1, 6, 11]], 1 / np.sqrt(3), rtol=1e-6)


def test_sequences_in_one_batch_do_not_share_k_mers_across_their_border() -> None:
    embedder = KmerEmbedder(k=3)
    together = embedder.embed_sequences(["AAAC", "GTTT", "ACGTACGT"])
    alone = np.vstack([embedder.embed_sequences([s]) for s in ["AAAC", "GTTT", "ACGTACGT"]])
    np.testing.assert_array_equal(together, alone)


def test_lowercase_and_rna_embed_like_uppercase_dna() -> None:
    embedder = KmerEmbedder(k=3)
    upper, lower, rna = embedder.embed_sequences(["ACGTTGCA", "acgttgca", "ACGUUGCA"])
    np.testing.assert_array_equal(upper, lower)
    np.testing.assert_array_equal(upper, rna)
    protein = KmerEmbedder(k=2, alphabet="protein")
    np.testing.assert_array_equal(*protein.embed_sequences(["MKTAYIAK", "mktayiak"]))


@pytest.mark.parametrize(
    ("params", "dim", "hashed"),
    [
        ({"k": 4}, 256, False),
        ({"k": 6}, 4096, False),
        ({"k": 7}, 4096, True),
        ({"k": 3, "buckets": 1024}, 1024, True),
        ({"k": 2, "alphabet": "protein"}, 400, False),
        ({"k": 3, "alphabet": "protein"}, 4096, True),
        ({"k": 5, "alphabet": "protein", "buckets": 2048}, 2048, True),
    ],
)
def test_dim_is_alphabet_power_or_buckets(params: dict[str, Any], dim: int, hashed: bool) -> None:
    embedder = KmerEmbedder(**params)
    assert (embedder.dim, embedder.hashed) == (dim, hashed)
    assert embedder.kind == "kmer" and embedder.modalities == ("sequence",)
    letters = ALPHABETS[params.get("alphabet", "dna")]
    assert embedder.embed_sequences([letters * 3]).shape == (1, dim)


def test_hash_is_stable_across_processes() -> None:
    # Expected buckets worked out by hand from the documented formula
    # ((code × 0x9E3779B97F4A7C15) mod 2**64 >> 32) mod buckets, so a change of hash fails here.
    acgtacgt = sum(v * 4 ** (7 - i) for i, v in enumerate([0, 1, 2, 3, 0, 1, 2, 3]))  # 6939
    assert hash_buckets(np.array([acgtacgt]), 4096).tolist() == [1789]
    vector = KmerEmbedder(k=8, buckets=4096).embed_sequences(["ACGTACGT"])[0]
    assert np.flatnonzero(vector).tolist() == [1789]
    vector = KmerEmbedder(k=3, alphabet="protein").embed_sequences(["ACD"])[0]  # code 0·400 + 1·20 + 2 = 22
    assert np.flatnonzero(vector).tolist() == [1520]


def test_hash_spreads_k_mers_over_buckets() -> None:
    # 4**8 codes into 4096 buckets: a good hash fills nearly all; `code % 4096` would keep only the last 6 letters.
    used = np.unique(hash_buckets(np.arange(4**8), 4096))
    assert len(used) > 0.97 * 4096


@pytest.mark.parametrize(
    ("sequence", "message"),
    [
        ("", "sequence 1 is empty"),
        ("AC", "sequence 1 has 2 letters, fewer than k=3"),
        ("A" * 101, "sequence 1 has 101 letters, more than the limit 100"),
        ("ACGNT", "sequence 1 has invalid character 'N' at position 3"),
        ("ACG T", "sequence 1 has invalid character ' ' at position 3"),
        ("ACGTé", "sequence 1 has invalid character 'é' at position 4"),
    ],
)
def test_bad_sequences_are_invalid_input(sequence: str, message: str) -> None:
    embedder = KmerEmbedder(k=3, max_length=100)
    with pytest.raises(InvalidInput, match=message) as caught:
        embedder.embed_sequences(["ACGT", sequence])
    assert caught.value.status_code == 400 and caught.value.details["index"] == 1


def test_protein_rejects_non_standard_amino_acids() -> None:
    with pytest.raises(InvalidInput, match="invalid character 'X' at position 2") as caught:
        KmerEmbedder(k=2, alphabet="protein").embed_sequences(["MKXA"])
    assert caught.value.details == {"index": 0, "position": 2, "character": "X"}


@pytest.mark.parametrize(
    "params",
    [{"k": 0}, {"k": 13}, {"buckets": 15}, {"alphabet": "rna"}, {"k": 5, "max_length": 4}],
)
def test_bad_parameters_are_value_errors(params: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        KmerEmbedder(**params)


def test_empty_batch_gives_no_rows() -> None:
    assert KmerEmbedder(k=4).embed_sequences([]).shape == (0, 256)
