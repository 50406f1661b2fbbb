"""Server settings, read from UMBRELLA_* environment variables."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
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
    api_key: str | None = Field(
        None,
        description="The admin key: every request but the open ones must send it (or the read-only key, or a "
        "token signed with it) as the `api-key` header or `Authorization: Bearer …`.",
    )
    read_only_api_key: str | None = Field(
        None, description="A second key that reads every collection and changes nothing (needs UMBRELLA_API_KEY)."
    )
    public_docs: bool = Field(True, description="Serve /docs and /openapi.json without a key.")
    allow_unauthenticated: bool = Field(
        False, description="Let `umbrella serve` listen on a non-loopback address without UMBRELLA_API_KEY."
    )
    client_timeout_s: float = Field(
        30,
        gt=0,
        description="A client must send its request head within this many seconds, and may not stall its body "
        "longer (the whole body: ten times this); slower connections are closed.",
    )
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
        1_200_000,
        ge=0,
        description="Planner, with a filter: search exactly when matching points × dim is at most this "
        "(benchmarks/RESULTS.md, filtered search section: the post-filtered graph is faster above it).",
    )
    mask_cache_mb: int = Field(
        64,
        ge=0,
        description="Per collection, MiB of filter masks kept for filters asked again before the next write "
        "(one byte per point each; 0 turns it off).",
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

    ray_address: str | None = Field(
        None,
        description="A Ray cluster to place sharded collections on (`auto`, `ray://host:10001`, or a head "
        "node's address); without it the server is one process and Ray is never imported.",
    )
    shard_timeout_s: float = Field(
        10, gt=0, description="How long a sharded collection waits for one copy of a shard to answer."
    )
    shard_replace_after_s: float = Field(
        300,
        ge=0,
        description="How long a node may be gone before the copies it held are made again on other nodes from "
        "the surviving copies; 0: never (wait for the node to return).",
    )

    @model_validator(mode="after")
    def _keys_make_sense(self) -> Settings:
        if self.read_only_api_key and not self.api_key:
            raise ValueError("UMBRELLA_READ_ONLY_API_KEY needs UMBRELLA_API_KEY: without an admin key all is open")
        if self.read_only_api_key and self.read_only_api_key == self.api_key:
            raise ValueError("UMBRELLA_READ_ONLY_API_KEY must differ from UMBRELLA_API_KEY")
        return self

    def unsafe_bind(self) -> str | None:
        """Why listening on `host` would be unsafe (None when it is not): a non-loopback address and no key."""
        if self.api_key or self.allow_unauthenticated or _is_loopback(self.host):
            return None
        return (
            f"refusing to listen on {self.host} without UMBRELLA_API_KEY: anyone who reaches it could read and "
            "delete every collection (set UMBRELLA_API_KEY, or UMBRELLA_ALLOW_UNAUTHENTICATED=1 to accept that)"
        )


def _is_loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name other than localhost may resolve to anything
        return False
