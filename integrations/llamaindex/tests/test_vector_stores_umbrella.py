"""UmbrellaVectorStore against a real server: add, query, filters, deletes, get_nodes, MMR, and the async twins."""

from __future__ import annotations

from typing import Any

import pytest
from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
)
from llama_index.core.vector_stores.utils import build_metadata_filter_fn
from llama_index.vector_stores.umbrella import UmbrellaVectorStore, UnsupportedFilterError
from llama_index.vector_stores.umbrella import base as umbrella_base
from llama_index.vector_stores.umbrella import queries as umbrella_queries
from umbrella_client import Client

pytestmark = pytest.mark.e2e

DIM = 4


def _source(doc_id: str) -> dict[NodeRelationship, RelatedNodeInfo]:
    return {NodeRelationship.SOURCE: RelatedNodeInfo(node_id=doc_id)}


NOTE_ID = "0b7c2a4e-51b8-4d39-9c61-8a3f4f1d2e77"  # a uuid, as LlamaIndex makes them


@pytest.fixture
def nodes() -> list[TextNode]:
    """Two near-duplicate fruits and a vegetable from two documents, and a note without a document or a price."""
    return [
        TextNode(
            id_="n-apple",
            text="Apples are red and sweet",
            embedding=[1.0, 0.0, 0.0, 0.0],
            metadata={"kind": "fruit", "price": 3, "tags": ["red", "sweet"]},
            relationships=_source("doc-a"),
        ),
        TextNode(
            id_="n-banana",
            text="Bananas are yellow",
            embedding=[0.9, 0.1, 0.0, 0.0],
            metadata={"kind": "fruit", "price": 1.5, "tags": ["yellow", "sweet"]},
            relationships=_source("doc-a"),
        ),
        TextNode(
            id_="n-kale",
            text="Kale is green",
            embedding=[0.0, 1.0, 0.0, 0.0],
            metadata={"kind": "vegetable", "price": 4, "tags": ["green"]},
            relationships=_source("doc-b"),
        ),
        TextNode(id_=NOTE_ID, text="A plain note", embedding=[0.0, 0.0, 1.0, 0.0], metadata={"kind": "note"}),
    ]


ALL = {"n-apple", "n-banana", "n-kale", NOTE_ID}


def f(key: str, value: Any, op: FilterOperator = FilterOperator.EQ) -> MetadataFilter:
    return MetadataFilter(key=key, value=value, operator=op)


def ids_of(found: list[Any]) -> set[str]:
    return {node.node_id for node in found}


def search(vector: list[float], k: int = 10, **fields: Any) -> VectorStoreQuery:
    return VectorStoreQuery(query_embedding=vector, similarity_top_k=k, **fields)


def test_add_creates_a_cosine_collection_with_the_first_dimension(
    store: UmbrellaVectorStore, nodes: list[TextNode], umbrella_url: str
) -> None:
    assert store.add(nodes) == [n.node_id for n in nodes]
    with Client(umbrella_url) as client:
        info = client.get_collection(store.collection_name)
    assert (info.dim, info.metric, info.count) == (DIM, "cosine", len(nodes))
    assert info.payload_indexes == {"ref_doc_id": "keyword"}


def test_query_returns_the_nearest_nodes_with_text_metadata_and_ids(
    store: UmbrellaVectorStore, nodes: list[TextNode]
) -> None:
    store.add(nodes)
    result = store.query(search([1.0, 0.0, 0.0, 0.0], k=2))
    assert result.ids == ["n-apple", "n-banana"]
    assert result.similarities is not None and result.similarities[0] == pytest.approx(1.0)
    assert result.similarities[0] > result.similarities[1]
    apple = result.nodes[0]
    assert isinstance(apple, TextNode)
    assert apple.text == "Apples are red and sweet"
    assert apple.metadata == {"kind": "fruit", "price": 3, "tags": ["red", "sweet"]}
    assert apple.ref_doc_id == "doc-a"


def test_get_nodes_by_id_round_trips_string_ids_in_the_order_asked(
    store: UmbrellaVectorStore, nodes: list[TextNode]
) -> None:
    store.add(nodes)
    found = store.get_nodes(node_ids=[NOTE_ID, "no-such-node", "n-kale"])
    assert [n.node_id for n in found] == [NOTE_ID, "n-kale"]
    assert found[0].get_content() == "A plain note" and found[0].ref_doc_id is None
    assert found[1].embedding == pytest.approx([0.0, 1.0, 0.0, 0.0])  # stored at unit length: this one already is
    assert ids_of(store.get_nodes()) == ALL
    assert store.get_nodes(node_ids=[]) == []


def test_add_sends_batches_and_replaces_by_node_id(umbrella_url: str, collection_name: str) -> None:
    store = UmbrellaVectorStore(collection_name, umbrella_url, batch_size=2)
    try:
        many = [TextNode(id_=f"n{i}", text=f"node {i}", embedding=[1.0, float(i), 0.0]) for i in range(5)]
        store.add(many)
        store.add([TextNode(id_="n3", text="node three, again", embedding=[0.0, 0.0, 1.0])])
        found = store.get_nodes()
        assert ids_of(found) == {f"n{i}" for i in range(5)}
        assert next(n for n in found if n.node_id == "n3").get_content() == "node three, again"
    finally:
        store.clear()
        store.close()


def test_reads_page_through_scroll_and_cut_ids_into_requests(
    store: UmbrellaVectorStore, nodes: list[TextNode], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(umbrella_base, "SCROLL_PAGE", 1)  # every point a page of its own
    monkeypatch.setattr(umbrella_queries, "IDS_PER_REQUEST", 3)  # four ids: two requests
    store.add(nodes)
    assert ids_of(store.get_nodes()) == ALL
    asked = [NOTE_ID, "n-kale", "n-apple", "n-banana"]
    assert [n.node_id for n in store.get_nodes(node_ids=asked)] == asked
    store.delete_nodes(asked[1:])
    assert ids_of(store.get_nodes()) == {NOTE_ID}


# Each filter with the nodes it keeps; LlamaIndex's in-memory filter function is asked too where it can judge.
FILTERS: list[tuple[str, MetadataFilters, set[str]]] = [
    ("eq", MetadataFilters(filters=[f("kind", "fruit")]), {"n-apple", "n-banana"}),
    ("ne: absent fields pass", MetadataFilters(filters=[f("price", 3, FilterOperator.NE)]), ALL - {"n-apple"}),
    ("gt", MetadataFilters(filters=[f("price", 3, FilterOperator.GT)]), {"n-kale"}),
    ("gte", MetadataFilters(filters=[f("price", 3, FilterOperator.GTE)]), {"n-apple", "n-kale"}),
    ("lt", MetadataFilters(filters=[f("price", 3, FilterOperator.LT)]), {"n-banana"}),
    ("lte", MetadataFilters(filters=[f("price", 3.0, FilterOperator.LTE)]), {"n-apple", "n-banana"}),
    ("in", MetadataFilters(filters=[f("kind", ["note", "vegetable"], FilterOperator.IN)]), {"n-kale", NOTE_ID}),
    ("nin", MetadataFilters(filters=[f("kind", ["note", "vegetable"], FilterOperator.NIN)]), {"n-apple", "n-banana"}),
    ("any", MetadataFilters(filters=[f("tags", ["red", "green"], FilterOperator.ANY)]), {"n-apple", "n-kale"}),
    ("all", MetadataFilters(filters=[f("tags", ["red", "sweet"], FilterOperator.ALL)]), {"n-apple"}),
    ("contains", MetadataFilters(filters=[f("tags", "sweet", FilterOperator.CONTAINS)]), {"n-apple", "n-banana"}),
    ("is_empty", MetadataFilters(filters=[f("price", None, FilterOperator.IS_EMPTY)]), {NOTE_ID}),
    ("words", MetadataFilters(filters=[f("text", "RED apples", FilterOperator.TEXT_MATCH_INSENSITIVE)]), {"n-apple"}),
    (
        "and",
        MetadataFilters(filters=[f("kind", "fruit"), f("price", 2, FilterOperator.GT)]),
        {"n-apple"},
    ),
    (
        "or",
        MetadataFilters(
            filters=[f("kind", "vegetable"), f("price", 2, FilterOperator.LT)], condition=FilterCondition.OR
        ),
        {"n-kale", "n-banana"},
    ),
    (
        "not",
        MetadataFilters(filters=[f("kind", "fruit"), f("kind", "note")], condition=FilterCondition.NOT),
        {"n-kale"},
    ),
    (
        "or with ne",
        MetadataFilters(filters=[f("kind", "fruit", FilterOperator.NE), f("price", 3)], condition=FilterCondition.OR),
        {"n-apple", "n-kale", NOTE_ID},
    ),
]
NESTED: list[tuple[str, MetadataFilters, set[str]]] = [
    (
        "fruit and (cheap or red)",
        MetadataFilters(
            filters=[
                f("kind", "fruit"),
                MetadataFilters(
                    filters=[f("price", 2, FilterOperator.LT), f("tags", "red", FilterOperator.CONTAINS)],
                    condition=FilterCondition.OR,
                ),
            ]
        ),
        {"n-apple", "n-banana"},
    ),
    (
        "three levels: vegetable or (under 1 or (fruit and (red or over 100)))",
        MetadataFilters(
            filters=[
                f("kind", "vegetable"),
                MetadataFilters(
                    filters=[
                        f("price", 1, FilterOperator.LT),
                        MetadataFilters(
                            filters=[
                                f("kind", "fruit"),
                                MetadataFilters(
                                    filters=[
                                        f("tags", "red", FilterOperator.CONTAINS),
                                        f("price", 100, FilterOperator.GT),
                                    ],
                                    condition=FilterCondition.OR,
                                ),
                            ]
                        ),
                    ],
                    condition=FilterCondition.OR,
                ),
            ],
            condition=FilterCondition.OR,
        ),
        {"n-kale", "n-apple"},
    ),
    (
        "not (vegetable or priced over 2)",
        MetadataFilters(
            filters=[
                MetadataFilters(
                    filters=[f("kind", "vegetable"), f("price", 2, FilterOperator.GT)], condition=FilterCondition.OR
                )
            ],
            condition=FilterCondition.NOT,
        ),
        {"n-banana", NOTE_ID},
    ),
]


@pytest.mark.parametrize(("filters", "expected"), [c[1:] for c in FILTERS], ids=[c[0] for c in FILTERS])
def test_filters_keep_what_llamaindex_would(
    store: UmbrellaVectorStore, nodes: list[TextNode], filters: MetadataFilters, expected: set[str]
) -> None:
    store.add(nodes)
    payloads = {n.node_id: {**n.metadata, "text": n.text} for n in nodes}
    if filters.filters[0].operator != FilterOperator.TEXT_MATCH_INSENSITIVE:  # LlamaIndex's is a substring test
        keeps = build_metadata_filter_fn(payloads.__getitem__, filters)
        assert {i for i in payloads if keeps(i)} == expected  # the table itself agrees with LlamaIndex
    assert ids_of(store.get_nodes(filters=filters)) == expected
    assert set(store.query(search([0.5, 0.5, 0.5, 0.5], filters=filters)).ids or []) == expected


@pytest.mark.parametrize(("filters", "expected"), [c[1:] for c in NESTED], ids=[c[0] for c in NESTED])
def test_nested_filters(
    store: UmbrellaVectorStore, nodes: list[TextNode], filters: MetadataFilters, expected: set[str]
) -> None:
    store.add(nodes)
    assert ids_of(store.get_nodes(filters=filters)) == expected
    assert set(store.query(search([0.5, 0.5, 0.5, 0.5], filters=filters)).ids or []) == expected


def test_query_narrows_by_node_ids_and_doc_ids(store: UmbrellaVectorStore, nodes: list[TextNode]) -> None:
    store.add(nodes)
    vector = [1.0, 0.0, 0.0, 0.0]
    assert store.query(search(vector, doc_ids=["doc-b"])).ids == ["n-kale"]
    assert set(store.query(search(vector, node_ids=["n-kale", NOTE_ID])).ids or []) == {"n-kale", NOTE_ID}
    fruit = MetadataFilters(filters=[f("kind", "fruit")])
    assert store.query(search(vector, doc_ids=["doc-a", "doc-b"], filters=fruit)).ids == ["n-apple", "n-banana"]
    assert set(store.query(search(vector, node_ids=[], doc_ids=[])).ids or []) == ALL  # what VectorStoreIndex sends


def test_mmr_trades_a_near_duplicate_for_variety(store: UmbrellaVectorStore, nodes: list[TextNode]) -> None:
    store.add(nodes)
    vector = [1.0, 0.0, 0.5, 0.0]  # apple and banana nearly alike and nearest; the note further, but different
    assert store.query(search(vector, k=2)).ids == ["n-apple", "n-banana"]
    mmr = search(vector, k=2, mode=VectorStoreQueryMode.MMR, mmr_threshold=0.3)
    assert store.query(mmr).ids == ["n-apple", NOTE_ID]
    assert store.query(search(vector, k=2, mode=VectorStoreQueryMode.MMR, mmr_threshold=1.0)).ids == [
        "n-apple",
        "n-banana",
    ]


def test_delete_by_ref_doc_id(store: UmbrellaVectorStore, nodes: list[TextNode]) -> None:
    store.add(nodes)
    store.delete("doc-a")
    assert ids_of(store.get_nodes()) == {"n-kale", NOTE_ID}
    store.delete("no-such-document")
    assert ids_of(store.get_nodes()) == {"n-kale", NOTE_ID}


def test_delete_nodes_by_ids_filters_or_both(store: UmbrellaVectorStore, nodes: list[TextNode]) -> None:
    store.add(nodes)
    store.delete_nodes(["n-apple", "n-kale"], filters=MetadataFilters(filters=[f("kind", "fruit")]))
    assert ids_of(store.get_nodes()) == ALL - {"n-apple"}
    store.delete_nodes(filters=MetadataFilters(filters=[f("price", 4, FilterOperator.GTE)]))
    assert ids_of(store.get_nodes()) == {"n-banana", NOTE_ID}
    store.delete_nodes([NOTE_ID, "no-such-node"])
    assert ids_of(store.get_nodes()) == {"n-banana"}
    with pytest.raises(ValueError, match="clear"):
        store.delete_nodes()
    store.delete_nodes([])  # nothing picked, nothing deleted
    assert ids_of(store.get_nodes()) == {"n-banana"}


def test_clear_drops_the_collection_and_add_makes_it_again(store: UmbrellaVectorStore, nodes: list[TextNode]) -> None:
    store.add(nodes)
    store.clear()
    assert store.get_nodes() == []
    assert store.query(search([1.0, 0.0, 0.0, 0.0])).ids == []
    store.add([TextNode(id_="wide", text="another dimension", embedding=[1.0] * 8)])
    assert store.query(search([1.0] * 8)).ids == ["wide"]


def test_reads_and_deletes_before_the_first_add_find_nothing(store: UmbrellaVectorStore) -> None:
    assert store.get_nodes() == []
    assert store.query(search([1.0, 0.0, 0.0, 0.0])).nodes == []
    store.delete("doc-a")
    store.clear()


def test_points_written_without_llamaindex_come_back_as_text_nodes(
    store: UmbrellaVectorStore, nodes: list[TextNode], umbrella_url: str
) -> None:
    store.add(nodes)
    with Client(umbrella_url) as client:
        client.upsert(store.collection_name, [7], vectors=[[0.0, 0.0, 0.0, 1.0]], payloads=[{"text": "raw", "n": 1}])
    (node,) = store.query(search([0.0, 0.0, 0.0, 1.0], k=1)).nodes or []
    assert (node.node_id, node.get_content(), node.metadata) == ("7", "raw", {"n": 1})


def test_what_the_server_cannot_answer_is_refused_clearly(store: UmbrellaVectorStore, nodes: list[TextNode]) -> None:
    store.add(nodes)
    with pytest.raises(UnsupportedFilterError, match="TEXT_MATCH_INSENSITIVE"):
        store.get_nodes(filters=MetadataFilters(filters=[f("text", "Apples", FilterOperator.TEXT_MATCH)]))
    with pytest.raises(UnsupportedFilterError, match="numbers only"):
        store.get_nodes(filters=MetadataFilters(filters=[f("kind", "f", FilterOperator.GT)]))
    with pytest.raises(ValueError, match="hybrid"):
        store.query(search([1.0, 0.0, 0.0, 0.0], mode=VectorStoreQueryMode.HYBRID, query_str="apples"))
    with pytest.raises(ValueError, match="query_embedding"):
        store.query(VectorStoreQuery(query_str="apples"))


@pytest.mark.anyio
async def test_async_twins(astore: UmbrellaVectorStore, nodes: list[TextNode]) -> None:
    assert await astore.async_add(nodes) == [n.node_id for n in nodes]
    result = await astore.aquery(search([1.0, 0.0, 0.0, 0.0], k=2))
    assert result.ids == ["n-apple", "n-banana"]
    fruit = MetadataFilters(filters=[f("kind", "fruit")])
    assert ids_of(await astore.aget_nodes(filters=fruit)) == {"n-apple", "n-banana"}
    assert [n.node_id for n in await astore.aget_nodes(node_ids=["n-kale", "n-apple"])] == ["n-kale", "n-apple"]
    await astore.adelete("doc-b")
    await astore.adelete_nodes(["n-banana"])
    assert ids_of(await astore.aget_nodes()) == {"n-apple", NOTE_ID}
    await astore.aclear()
    assert await astore.aget_nodes() == []
    assert (await astore.aquery(search([1.0, 0.0, 0.0, 0.0]))).ids == []


@pytest.mark.anyio
async def test_a_store_given_one_kind_of_client_says_so(umbrella_url: str, collection_name: str) -> None:
    with Client(umbrella_url) as client:
        store = UmbrellaVectorStore(collection_name, client=client)
        store.add([TextNode(id_="a", text="a", embedding=[1.0, 0.0])])
        assert store.query(search([1.0, 0.0])).ids == ["a"]
        with pytest.raises(ValueError, match="aclient="):
            await store.aquery(search([1.0, 0.0]))
        store.clear()
    with pytest.raises(TypeError, match="url"):
        UmbrellaVectorStore(collection_name, umbrella_url, client=client)
