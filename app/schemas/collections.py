"""Collection requests and responses."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, model_validator

from app.collections.models import DEFAULT_EF, DEFAULT_EF_CONSTRUCTION, DEFAULT_M, LIMITS, MAX_DIM
from app.personalization.config import (
    DEFAULT_CATEGORY_FIELD,
    DEFAULT_HALF_LIFE_DAYS,
    DEFAULT_PRICE_FIELD,
    DEFAULT_WEIGHTS,
)
from app.schemas.common import Strict, at_least_one_of

FieldTypeName = Literal["keyword", "integer", "float", "bool"]


class HnswParams(Strict):
    m: int = Field(
        DEFAULT_M,
        ge=LIMITS["m"][0],
        le=LIMITS["m"][1],
        description="Links per node; more is better recall, more memory.",
    )
    ef_construction: int = Field(
        DEFAULT_EF_CONSTRUCTION,
        ge=LIMITS["ef_construction"][0],
        le=LIMITS["ef_construction"][1],
        description="Beam width while inserting.",
    )
    ef: int = Field(
        DEFAULT_EF, ge=LIMITS["ef"][0], le=LIMITS["ef"][1], description="Default beam width while searching."
    )


class TextEmbedderSpec(Strict):
    kind: Literal["text"] = Field(description="A sentence-transformers text model.")
    model: str = Field(
        "all-MiniLM-L6-v2",
        min_length=1,
        max_length=200,
        description="Model name (or an absolute path) on this machine.",
    )


class ClipEmbedderSpec(Strict):
    kind: Literal["clip"] = Field(description="A sentence-transformers CLIP model: photos and words in one space.")
    model: str = Field(
        "clip-ViT-B-32", min_length=1, max_length=200, description="Model name (or an absolute path) on this machine."
    )


class KmerEmbedderSpec(Strict):
    kind: Literal["kmer"] = Field(description="DNA/protein sequences as normalised k-mer frequency vectors.")
    k: int = Field(4, ge=1, le=12, description="k-mer length.")
    alphabet: Literal["dna", "protein"] = Field("dna", description="ACGT (U read as T), or the 20 amino acids.")
    buckets: int | None = Field(
        None, ge=16, le=65_536, description="Hash k-mers into this many buckets (default: all k-mers, or 4096 if more)."
    )


class ImageEmbedderSpec(Strict):
    kind: Literal["image"] = Field(
        description="Model-free colour, texture and layout features: finds near-identical product photos."
    )


class EventWeights(Strict):
    view: float = Field(
        DEFAULT_WEIGHTS["view"], ge=0, le=100, description="Pull of a view on the taste vector and popularity."
    )
    click: float = Field(DEFAULT_WEIGHTS["click"], ge=0, le=100)
    cart: float = Field(DEFAULT_WEIGHTS["cart"], ge=0, le=100)
    purchase: float = Field(DEFAULT_WEIGHTS["purchase"], ge=0, le=100)
    rating: float = Field(
        DEFAULT_WEIGHTS["rating"], ge=0, le=100, description="Pull of a 5-star rating; 3 stars: 0; 1 star pushes away."
    )


class RecommendationSettings(Strict):
    weights: EventWeights = Field(default_factory=EventWeights, description="How much each event type counts.")
    half_life_days: float = Field(
        DEFAULT_HALF_LIFE_DAYS, gt=0, le=3650, description="An interaction this old counts half."
    )
    category_field: str | None = Field(
        DEFAULT_CATEGORY_FIELD,
        description="A keyword payload index: category affinity feature, a user's top categories.",
    )
    price_field: str | None = Field(
        DEFAULT_PRICE_FIELD, description="A float/integer payload index: the price-relative-to-usual feature."
    )


class LexicalSpec(Strict):
    model_config = ConfigDict(json_schema_extra=at_least_one_of("fields", "source"))

    fields: list[Annotated[str, Field(min_length=1, max_length=256)]] = Field(
        default_factory=list,
        max_length=64,
        description="Payload fields whose words go into the keyword index (strings, numbers, lists of them; "
        "a dotted key reaches into nested objects).",
    )
    source: bool | None = Field(
        None,
        description="Also index the text each point was embedded from (needs store_source). "
        "Default: on when the collection keeps the sources of a text or CLIP embedder.",
    )

    @model_validator(mode="after")
    def _something(self) -> LexicalSpec:
        if not self.fields and self.source is False:
            raise ValueError("name fields to index, or source: true")
        return self


EmbedderSpec = Annotated[
    TextEmbedderSpec | ClipEmbedderSpec | KmerEmbedderSpec | ImageEmbedderSpec, Field(discriminator="kind")
]


class CollectionCreate(Strict):
    model_config = ConfigDict(json_schema_extra=at_least_one_of("dim", "embedder"))

    dim: int | None = Field(None, ge=1, le=MAX_DIM, description="Vector dimension; the embedder's if one is set.")
    embedder: EmbedderSpec | None = Field(
        None, description="Embed texts, images or sequences server-side instead of receiving vectors."
    )
    metric: Literal["cosine", "ip", "l2"] = Field("cosine", description="cosine, inner product, or Euclidean.")
    hnsw: HnswParams = Field(default_factory=HnswParams, description="Graph parameters.")
    payload_indexes: dict[str, FieldTypeName] = Field(
        default_factory=dict, max_length=64, description="Payload fields to index for filtering, with their type."
    )
    store_source: bool = Field(
        False,
        description="Keep the text, sequence or image each point was embedded from; read it back with with_source.",
    )
    recommendation: RecommendationSettings = Field(
        default_factory=RecommendationSettings, description="How events build user profiles and ranker features."
    )
    strict: bool = Field(
        False,
        description="Refuse (400 unindexed_field) filters and facets on fields without a payload index, "
        "instead of scanning the payloads.",
    )
    lexical: LexicalSpec | None = Field(
        None,
        description="Keep a keyword (BM25) index for lexical and hybrid search; change it later with PUT …/lexical.",
    )
    shards: int | None = Field(
        None,
        ge=1,
        le=1024,
        description="Spread the points over this many shards on the Ray cluster (needs UMBRELLA_RAY_ADDRESS); "
        "absent: a collection of this server alone.",
    )
    replicas: int = Field(1, ge=1, le=16, description="Copies of each shard, each on a different node.")
    write_quorum: int | None = Field(
        None, ge=1, le=16, description="Copies that must commit a write before it is acknowledged (a majority)."
    )

    @model_validator(mode="after")
    def _dim_or_embedder(self) -> CollectionCreate:
        if self.dim is None and self.embedder is None:
            raise ValueError("send dim, or an embedder that decides it")
        return self

    @model_validator(mode="after")
    def _recommendation_fields(self) -> CollectionCreate:
        """A field named on purpose must be declared; the defaults just go unused when it is not."""
        rec = self.recommendation
        for attr, types in (("category_field", ("keyword",)), ("price_field", ("float", "integer"))):
            name = getattr(rec, attr)
            if name is not None and self.payload_indexes.get(name) not in types:
                if attr in rec.model_fields_set:
                    raise ValueError(f"recommendation.{attr} {name!r} must be a {' or '.join(types)} payload index")
                setattr(rec, attr, None)
        return self


class CollectionInfo(Strict):
    name: str
    dim: int
    metric: str
    hnsw: HnswParams
    payload_indexes: dict[str, FieldTypeName]
    embedder: dict[str, object] | None = Field(None, description="The embedder spec, if any.")
    store_source: bool = Field(description="Whether points keep what they were embedded from.")
    recommendation: RecommendationSettings
    strict: bool = Field(description="Whether filters on fields without a payload index are refused.")
    lexical: LexicalSpec | None = Field(None, description="The keyword index's fields, if it keeps one.")
    lexical_state: Literal["off", "building", "ready", "failed"] = Field(
        description="The keyword index: none, being rewritten after its fields changed, or level with the points."
    )
    lexical_progress: float = Field(description="Share of the points a running rebuild has rewritten (1 when idle).")
    payload_index_builds: dict[str, float] = Field(
        default_factory=dict,
        description="Payload indexes being built on stored points, with the share done; filters on them scan "
        "until they finish.",
    )
    count: int = Field(description="Points stored.")
    indexed_count: int = Field(description="Points in the HNSW graph (0 while it is being built).")
    index_state: Literal["building", "ready", "failed"] = Field(
        description="Graph state; exact search serves until ready."
    )
    memory_bytes: int = Field(description="Approximate memory held by vectors, graph and payloads.")
    seq: int = Field(description="Sequence number of the last applied write batch.")
    shards: int | None = Field(None, description="Shards on the Ray cluster; null for a collection of this server.")
    replicas: int | None = Field(None, description="Copies of each shard (sharded collections).")
    write_quorum: int | None = Field(None, description="Copies a write needs before it is acknowledged (sharded).")
    recall_estimate: float | None = Field(
        description="Live recall@k of graph searches: a sample re-run exactly in the background "
        "(UMBRELLA_RECALL_SAMPLE_EVERY); null before the first sample."
    )
    recall_samples: int = Field(description="Sampled searches behind recall_estimate (the most recent 1,000).")


class PayloadIndexSpec(Strict):
    type: FieldTypeName = Field(description="keyword (strings or lists of them), integer, float or bool.")


class CollectionList(Strict):
    collections: list[CollectionInfo]


class TuneRequest(Strict):
    target_recall: float = Field(0.95, gt=0, le=1, description="Recall@k to reach.")
    k: int = Field(10, ge=1, le=1000, description="Results per search the recall is measured at.")
    queries: int = Field(200, ge=1, le=5000, description="How many recent searches or stored points to sample.")
    source: Literal["auto", "searches", "points"] = Field(
        "auto",
        description="Queries to tune on: the collection's recent unfiltered searches (what users ask), or stored "
        "points, each leaving itself out (they flatter the graph: they are in it). auto: searches once 50 are kept.",
    )
    vectors: list[list[float]] | None = Field(
        None, min_length=1, max_length=5000, description="Your own queries (e.g. a held-out log); overrides source."
    )
    seed: int = Field(0, ge=0, le=2**63 - 1, description="Which queries are sampled.")
    apply: bool = Field(False, description="Make the chosen ef the collection's default (kept across restarts).")


class TuneTrial(Strict):
    ef: int
    recall: float = Field(description="Mean recall@k of the graph against exact search at this ef.")
    ms_per_query: float = Field(description="Graph time per query, the queries run as one batch.")


class TuneReport(Strict):
    target_recall: float
    k: int
    queries: int = Field(description="Queries actually used (fewer when the collection is small).")
    query_source: Literal["given", "searches", "points"] = Field(description="Where the queries came from.")
    previous_ef: int = Field(description="The default ef before this call.")
    chosen_ef: int = Field(description="The smallest ef tried that reached the target, else the widest tried.")
    reached: bool
    applied: bool = Field(description="Whether chosen_ef is now the collection's default.")
    trials: list[TuneTrial] = Field(description="Each ef tried, in order; it stops at the first that reaches.")
