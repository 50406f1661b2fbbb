"""Snapshot responses."""

from __future__ import annotations

from pydantic import Field

from app.schemas.common import Strict


class SnapshotInfo(Strict):
    name: str = Field(description="<collection>-<UTC yyyymmddThhmmssZ>-<seq>.snapshot")
    size: int = Field(description="Bytes of the snapshot file.")
    created_at: str = Field(description="ISO 8601, UTC.")
    count: int | None = Field(description="Points it holds; null when its manifest cannot be read.")
    seq: int = Field(description="The last write batch it holds.")


class SnapshotList(Strict):
    snapshots: list[SnapshotInfo]
