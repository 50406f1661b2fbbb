"""A tiny BERT text model with random weights, built offline and saved as a sentence-transformers folder.

Whole words are its tokens (a word-level WordPiece vocabulary from the texts it is built for), two layers of
width 32: it embeds in milliseconds and learns new words in a few epochs, so fine-tuning tests run in seconds.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path


def build_tiny_text(folder: Path, texts: Iterable[str], name: str = "tiny-text") -> Path:
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import BertConfig, BertModel, BertTokenizer

    torch.manual_seed(0)
    raw = folder / f"{name}-hf"
    raw.mkdir(parents=True)
    words = sorted({w for text in texts for w in re.findall(r"\w+|[^\w\s]", text.lower())})
    (raw / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    BertTokenizer(str(raw / "vocab.txt")).save_pretrained(raw)
    config = BertConfig(
        vocab_size=len(words) + 5, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=64,
    )  # fmt: skip
    BertModel(config).save_pretrained(raw)
    encoder = Transformer(str(raw), max_seq_length=32)
    out = folder / name
    SentenceTransformer(modules=[encoder, Pooling(encoder.get_embedding_dimension(), "mean")]).save(str(out))
    return out
