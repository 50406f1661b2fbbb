"""Server settings, read from UMBRELLA_* environment variables."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob of the server; tests build their own instance instead of touching the environment."""

    model_config = SettingsConfigDict(env_prefix="UMBRELLA_", extra="ignore")

    data_dir: Path = Field(Path("indexes"), description="Folder holding one sub-folder per collection.")
    models_dir: Path | None = Field(
        None, description="Folder of local models (one sentence-transformers folder per model name)."
    )
    host: str = Field("127.0.0.1", description="Address `umbrella serve` binds to.")
    port: int = Field(8000, ge=1, le=65535, description="Port `umbrella serve` listens on.")
    api_key: str | None = Field(None, description="When set, every request must send it as `api-key` header.")
    durability: Literal["fsync", "relaxed"] = Field(
        "fsync",
        description="fsync: a write is acknowledged after it is on disk (survives power loss). "
        "relaxed: after the OS has it (survives kill -9, not power loss); faster bulk loads.",
    )
    max_batch_points: int = Field(10_000, ge=1, description="Most points in one upsert/get/delete request.")
    max_batch_queries: int = Field(1_000, ge=1, description="Most queries in one batch search request.")
    max_body_bytes: int = Field(64 * 1024 * 1024, ge=1024, description="Largest request body accepted.")
    max_ef: int = Field(10_000, ge=1, description="Widest beam the planner gives a filtered graph search.")
    exact_max_floats: int = Field(
        50_000,
        ge=0,
        description="Planner, no filter: search exactly when points × dim is at most this "
        "(benchmarks/RESULTS.md, planner section: the graph is faster above it).",
    )
    filtered_exact_max_floats: int = Field(
        1_000_000,
        ge=0,
        description="Planner, with a filter: search exactly when matching points × dim is at most this "
        "(benchmarks/RESULTS.md, planner section: the filtered graph is faster above it).",
    )
    checkpoint_every: int = Field(
        50_000, ge=1, description="Write an HNSW checkpoint after this many points changed since the last one."
    )
    index_threads: int = Field(
        default_factory=lambda: os.cpu_count() or 1, ge=1, description="Threads hnswlib uses to insert."
    )
    search_threads: int = Field(
        default_factory=lambda: os.cpu_count() or 1,
        ge=1,
        description="Searches that run at once in worker threads (exact, filtered, batch, recommendations); "
        "more wait. CPU-bound work: more threads than cores only fight over the cores and the GIL.",
    )
    recall_sample_every: int = Field(
        100,
        ge=0,
        description="Re-run one graph search in n (at random) exactly in the background: live recall@k (0: off).",
    )
    embed_max_batch: int = Field(
        64, ge=1, description="Most texts (or images) the micro-batcher gives the model in one call."
    )
    embed_max_wait_ms: float = Field(
        5, ge=0, description="How long the micro-batcher waits after a lone request for others to join its batch."
    )
    embed_max_queue: int = Field(
        1024, ge=1, description="Most items waiting to be embedded per model; beyond it requests get 429."
    )
