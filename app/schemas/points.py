"""Point requests and responses: upsert, get, delete, count, scroll."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field, model_validator

from app.schemas.common import Filter, ImageIn, PointId, SequenceIn, Strict, TextIn, VectorIn, exactly_one_of


class PointIn(Strict):
    model_config = ConfigDict(json_schema_extra=exactly_one_of("vector", "text", "sequence", "image"))

    id: PointId = Field(description="Unsigned integer or string; upserting an existing id replaces it.")
    vector: VectorIn | None = Field(None, description="List of numbers, or base64 of little-endian float32.")
    text: TextIn | None = Field(None, description="Text, for a text or CLIP collection.")
    sequence: SequenceIn | None = Field(None, description="DNA/protein sequence, for a kmer collection.")
    image: ImageIn | None = Field(None, description="Base64 JPEG/PNG/WebP, for an image or CLIP collection.")
    payload: dict[str, Any] | None = Field(None, description="Any JSON object.")

    @model_validator(mode="after")
    def _one_source(self) -> PointIn:
        if sum(x is not None for x in (self.vector, self.text, self.sequence, self.image)) != 1:
            raise ValueError("send exactly one of vector, text, sequence, image")
        return self


class PointBatch(Strict):
    ids: list[PointId] = Field(min_length=1, description="One id per vector.")
    vectors: str = Field(description="base64 of len(ids) × dim little-endian float32, row after row.")
    payloads: list[dict[str, Any] | None] | None = Field(None, description="One payload per id, or none at all.")

    @model_validator(mode="after")
    def _lengths(self) -> PointBatch:
        if self.payloads is not None and len(self.payloads) != len(self.ids):
            raise ValueError("payloads must have one entry per id")
        return self


class UpsertRequest(Strict):
    model_config = ConfigDict(json_schema_extra=exactly_one_of("points", "batch"))

    points: list[PointIn] | None = Field(None, min_length=1, description="Points, one object each.")
    batch: PointBatch | None = Field(None, description="Columnar form for bulk loads: ids, base64 vectors, payloads.")

    @model_validator(mode="after")
    def _one_form(self) -> UpsertRequest:
        if (self.points is None) == (self.batch is None):
            raise ValueError("send exactly one of points or batch")
        return self


class WriteResult(Strict):
    status: str = Field("ok", description="Always ok: errors come back as error envelopes.")
    count: int = Field(description="Points upserted or deleted.")
    seq: int = Field(description="Sequence number of the batch; it is on disk when this answer is sent.")


_WITH_SOURCE = "Return what each point was embedded from (collections created with store_source)."


class GetRequest(Strict):
    ids: list[PointId] = Field(min_length=1, description="Ids to fetch; an unknown id is a 404.")
    with_payload: bool = Field(True, description="Return payloads.")
    with_vector: bool = Field(False, description="Return vectors (unit length in cosine collections).")
    with_source: bool = Field(False, description=_WITH_SOURCE)


class DeleteRequest(Strict):
    model_config = ConfigDict(json_schema_extra=exactly_one_of("ids", "filter"))

    ids: list[PointId] | None = Field(None, min_length=1, description="Ids to delete; unknown ones are skipped.")
    filter: Filter | None = Field(None, description="Delete every point that matches.")

    @model_validator(mode="after")
    def _one_selector(self) -> DeleteRequest:
        if (self.ids is None) == (self.filter is None):
            raise ValueError("send exactly one of ids or filter")
        return self


class CountRequest(Strict):
    filter: Filter | None = Field(None, description="Count only the points that match.")


class CountResult(Strict):
    count: int


class ScrollRequest(Strict):
    filter: Filter | None = Field(None, description="Only points that match.")
    limit: int = Field(100, ge=1, le=10_000, description="Points per page.")
    offset: int | None = Field(None, ge=0, description="next_offset from the previous page; none for the first.")
    with_payload: bool = Field(True, description="Return payloads.")
    with_vector: bool = Field(False, description="Return vectors.")
    with_source: bool = Field(False, description=_WITH_SOURCE)


class PointOut(Strict):
    id: PointId
    payload: dict[str, Any] | None = None
    vector: list[float] | None = None
    source: dict[str, str] | None = Field(
        None, description='{"text": …}, {"sequence": …} or {"image": base64}; absent for points sent as vectors.'
    )


class PointList(Strict):
    points: list[PointOut]


class ScrollPage(Strict):
    points: list[PointOut]
    next_offset: int | None = Field(description="Pass as offset for the next page; null at the end.")
