"""A tiny CLIP with random weights, built offline and saved as a sentence-transformers folder.

The same loading code path as clip-ViT-B-32: a byte-level vocabulary with no merges gives a working
CLIPTokenizer; two layers of width 32 and 32-pixel images keep it small and fast. `full_size` builds one of
clip-ViT-B-32's shape instead (random weights too), for benchmarks that time what its size costs.
"""

from __future__ import annotations

import json
from pathlib import Path


def _byte_characters() -> list[str]:
    """GPT-2's reversible byte → printable character table, which CLIP's tokenizer also uses."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), 256))
    chars, extra = [], 0
    for b in range(256):
        if b in printable:
            chars.append(chr(b))
        else:
            chars.append(chr(256 + extra))
            extra += 1
    return chars


_VIT_B_32_TEXT = {"hidden_size": 512, "intermediate_size": 2048, "num_hidden_layers": 12, "num_attention_heads": 8}


def build_tiny_clip(folder: Path, *, full_size: bool = False) -> Path:
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import CLIPModel as SentenceClip
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    torch.manual_seed(0)
    raw = folder / "hf"
    raw.mkdir(parents=True)
    chars = _byte_characters()
    tokens = [*chars, *(c + "</w>" for c in chars), "<|startoftext|>", "<|endoftext|>"]
    vocab = {token: i for i, token in enumerate(tokens)}
    (raw / "vocab.json").write_text(json.dumps(vocab))
    (raw / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(str(raw / "vocab.json"), str(raw / "merges.txt"))
    start, end = vocab["<|startoftext|>"], vocab["<|endoftext|>"]
    small = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2}
    text, vision = (small, {**small, "image_size": 32, "patch_size": 8}) if not full_size else (_VIT_B_32_TEXT, {})
    config = CLIPConfig(
        text_config={
            **text,
            "vocab_size": 49_408 if full_size else len(vocab),  # ViT-B/32's BPE vocabulary: its embedding's size
            "max_position_embeddings": 77,
            "bos_token_id": start,
            "eos_token_id": end,
            "pad_token_id": end,
        },
        vision_config=vision,  # transformers' defaults are ViT-B/32's
        projection_dim=512 if full_size else 16,
    )
    CLIPModel(config).save_pretrained(raw)
    side = 224 if full_size else 32
    images = CLIPImageProcessor(size={"shortest_edge": side}, crop_size={"height": side, "width": side})
    CLIPProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(raw)
    out = folder / "tiny-clip"
    SentenceTransformer(modules=[SentenceClip(str(raw))]).save(str(out))
    return out
