"""Types shared by several request models: ids, vectors, filters, the error envelope."""

from __future__ import annotations

from typing import Annotated, Any, Generic, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    Tag,
    model_validator,
)

COLLECTION_NAME = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"

PointId = Annotated[StrictInt, Field(ge=0, le=2**63 - 1)] | Annotated[StrictStr, Field(min_length=1, max_length=256)]
"""An unsigned integer or a string; it comes back exactly as given."""

VectorIn = list[float] | StrictStr
"""A list of numbers, or base64 of little-endian float32."""

TextIn = Annotated[StrictStr, Field(min_length=1, max_length=8_192)]
SequenceIn = Annotated[StrictStr, Field(min_length=1, max_length=100_000)]
ImageIn = Annotated[StrictStr, Field(min_length=1, max_length=14_000_000)]  # base64 of at most ~10 MB


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def exactly_one_of(*names: str) -> dict[str, Any]:
    """The JSON Schema of a rule a model validator applies, so the OpenAPI (and a fuzzer) knows it too."""
    return {"oneOf": [{"required": [name]} for name in names]}


def at_least_one_of(*names: str) -> dict[str, Any]:
    return {"anyOf": [{"required": [name]} for name in names]}


class Range(Strict):
    model_config = ConfigDict(json_schema_extra=at_least_one_of("gt", "gte", "lt", "lte"))

    gt: float | None = Field(None, description="Greater than.")
    gte: float | None = Field(None, description="Greater than or equal.")
    lt: float | None = Field(None, description="Less than.")
    lte: float | None = Field(None, description="Less than or equal.")

    @model_validator(mode="after")
    def _one_bound(self) -> Range:
        if all(v is None for v in (self.gt, self.gte, self.lt, self.lte)):
            raise ValueError("a range needs at least one of gt, gte, lt, lte")
        return self


MatchValue = StrictStr | StrictBool | StrictInt | StrictFloat


PayloadKey = Annotated[
    str,
    Field(
        min_length=1,
        max_length=256,
        description="A payload field; a dotted key reaches into nested objects (specs.color). Fields with a payload "
        "index are answered from it, others by scanning the payloads.",
    ),
]


class FieldCondition(Strict):
    model_config = ConfigDict(json_schema_extra=exactly_one_of("match", "any", "range", "text"))

    key: PayloadKey
    match: MatchValue | None = Field(None, description="The field equals this value (or contains it, for lists).")
    any: list[MatchValue] | None = Field(
        None, min_length=1, max_length=1024, description="The field equals any of these (or contains one, for lists)."
    )
    range: Range | None = Field(None, description="The numeric field lies within these bounds.")
    text: str | None = Field(
        None,
        min_length=1,
        max_length=1024,
        description="The field's words include every word of this text (codes match whole or in parts); the "
        "keyword index narrows the points to check when the collection keeps one.",
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> FieldCondition:
        if sum(x is not None for x in (self.match, self.any, self.range, self.text)) != 1:
            raise ValueError("a condition needs exactly one of match, any, range, text")
        return self


class KeyRef(Strict):
    key: PayloadKey


class IsEmpty(Strict):
    is_empty: KeyRef = Field(description="The field is absent, null, or an empty list.")


class IsNull(Strict):
    is_null: KeyRef = Field(description="The field is present and null.")


class HasId(Strict):
    has_id: list[PointId] = Field(min_length=1, max_length=10_000, description="The point's id is one of these.")


def _kind(value: Any) -> str:
    """Which model a filter item is, from the one key that says so: a bad has_id is then reported as a bad
    has_id, not as a field condition missing its key."""
    if isinstance(value, BaseModel):
        value = value.model_dump(exclude_none=True)
    if not isinstance(value, dict):
        return "condition"
    for kind in ("has_id", "is_empty", "is_null"):
        if kind in value:
            return kind
    return "condition" if "key" in value else "filter"


def _items(nested: Any = None) -> Any:
    """Conditions, or filters nested one level further (none at the last level), told apart by _kind."""
    conditions = (
        Annotated[FieldCondition, Tag("condition")]
        | Annotated[IsEmpty, Tag("is_empty")]
        | Annotated[IsNull, Tag("is_null")]
        | Annotated[HasId, Tag("has_id")]
    )
    return Annotated[
        conditions if nested is None else conditions | Annotated[nested, Tag("filter")], Discriminator(_kind)
    ]


Item = TypeVar("Item")


class FilterOf(Strict, Generic[Item]):
    must: list[Item] | None = Field(None, max_length=64, description="All of these hold.")
    should: list[Item] | None = Field(None, max_length=64, description="At least one holds.")
    must_not: list[Item] | None = Field(None, max_length=64, description="None of these holds.")

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


# Filters nest three levels deep at most: a bound a caller can see in the schema, instead of a recursive schema
# (a fuzzer generating from the recursive one overflowed its own stack, and a deep nest is work for nothing).
class InnerFilter(FilterOf[_items()]):  # type: ignore[misc]
    """A filter nested two levels down: conditions only."""


class NestedFilter(FilterOf[_items(InnerFilter)]):  # type: ignore[misc]
    """A filter inside a filter."""


class Filter(FilterOf[_items(NestedFilter)]):  # type: ignore[misc]
    """Lists of conditions that must hold, of which one should, and that must not; filters nest three deep."""


class ErrorBody(Strict):
    code: str = Field(description="Stable machine-readable name, e.g. dimension_mismatch.")
    message: str = Field(description="What went wrong, for a person.")
    details: dict[str, Any] = Field(default_factory=dict, description="Facts about the failure.")


class ErrorResponse(Strict):
    error: ErrorBody
