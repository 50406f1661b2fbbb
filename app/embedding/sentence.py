"""Sentence-transformers embedders: text models and CLIP (images and text in one space), loaded from disk only."""

from __future__ import annotations

import importlib
import os
import re
import threading
from pathlib import Path
from typing import Any

import numpy as np

from app.core.errors import InvalidInput, ModelNotFound
from app.embedding.images import decode_image

MAX_TEXT_CHARS = 8_192


# A name, never a path: "all-MiniLM-L6-v2", or a Hugging Face "org/name". No "..", no leading "/".
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?")


def find_model(name: str, models_dir: Path | None) -> Path:
    """Where a model lives on this machine; never a download, never a path the caller chose.

    Looked up, in order: `models_dir/<name>`, a model package installed with pip (`gt-<name>`, which
    exposes get_model_path()), and the Hugging Face cache (`sentence-transformers/<name>` or `<name>`).
    The errors say neither where it looked nor what is there: a caller learns nothing of the disk.
    """
    if not _MODEL_NAME.fullmatch(name) or ".." in name:
        raise InvalidInput(
            f"model must be a name like all-MiniLM-L6-v2 or org/name, not a path: {name[:100]!r}", model=name[:100]
        )
    if models_dir is not None:
        path = models_dir / name
        if (path / "modules.json").exists() or (path / "config.json").exists():
            return path
    package = "gt_" + re.sub(r"[^a-z0-9]+", "_", name.lower())
    try:
        return Path(importlib.import_module(package).get_model_path())
    except (ImportError, AttributeError):
        pass
    for repo in (f"sentence-transformers/{name}", name):
        try:
            from huggingface_hub import snapshot_download

            return Path(snapshot_download(repo, local_files_only=True))
        except (ImportError, OSError, ValueError):  # not in the cache (offline lookups raise these)
            continue
    raise ModelNotFound(
        f"model {name!r} is not installed on this server. Put it in UMBRELLA_MODELS_DIR/<name> (a "
        f"sentence-transformers folder), install its package ({package.replace('_', '-')}) or have it in the "
        "Hugging Face cache; models are never downloaded while serving",
        model=name,
    )


class SentenceEmbedder:
    """A sentence-transformers model; kind "text" embeds texts, kind "clip" embeds texts and images."""

    def __init__(self, kind: str, model: str, models_dir: Path | None = None, *, path: Path | None = None) -> None:
        """`path`: a model folder the server itself wrote (a fine-tuned version of `model`), not looked up."""
        self.kind, self.model_name = kind, model
        self.modalities: tuple[str, ...] = ("text", "image") if kind == "clip" else ("text",)
        self.path = path or find_model(model, models_dir)  # a missing model fails when the collection is created
        self._model: Any = None
        self._lock = threading.Lock()
        model = self._load()
        dimension = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        self.dim = int(dimension() or 0)
        if self.dim <= 0:  # CLIP models report no dimension before a first call
            self.dim = int(self._load().encode(["probe"], convert_to_numpy=True).shape[1])

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")  # belt and braces: the path is local already
                from sentence_transformers import SentenceTransformer

                self._model = SentenceTransformer(str(self.path), device="cpu", local_files_only=True)
            return self._model

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        for i, text in enumerate(texts):
            if not isinstance(text, str) or not text.strip():
                raise InvalidInput(f"text #{i} is empty", index=i)
            if len(text) > MAX_TEXT_CHARS:
                raise InvalidInput(f"text #{i} has {len(text)} characters; the limit is {MAX_TEXT_CHARS}", index=i)
        return self._encode(texts)

    def embed_images(self, images: list[bytes]) -> np.ndarray:
        return self._encode([decode_image(data) for data in images])

    def _encode(self, items: list[Any]) -> np.ndarray:
        vectors = self._load().encode(
            items, batch_size=64, convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False
        )
        return np.asarray(vectors, dtype=np.float32)
