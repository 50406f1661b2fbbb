"""The store with client-side embeddings on a real server: filters, MMR, string ids, scores, from_texts."""

from __future__ import annotations

import math

import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_umbrella import UmbrellaVectorStore
from umbrella_client import AsyncClient, Client

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]


def _unit(*xs: float) -> list[float]:
    norm = math.sqrt(sum(x * x for x in xs))
    return [x / norm for x in xs]


class TableEmbeddings(Embeddings):
    """Fixed vectors by text: a test chooses the geometry (a near-copy, an orthogonal one) and knows the answer."""

    def __init__(self, table: dict[str, list[float]]) -> None:
        self.table = table

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self.table[t] for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self.table[text]


# "shoes?" is nearest to "red shoes", then its near-copy; MMR (lambda 0.5) trades the copy for "blue boots"
# (worked out for both LangChain's MMR and the server's min-max normalised one)
SHOP = TableEmbeddings(
    {
        "red shoes": _unit(1, 0, 0),
        "red shoes, again": _unit(0.98, 0.2, 0),
        "blue boots": _unit(0.5, 0, 0.866),
        "frying pan": _unit(0, -1, 0.2),
        "shoes?": _unit(1, 0, 0.25),
    }
)
CATALOGUE = [
    ("red shoes", {"category": "shoes", "price": 80, "tags": ["red", "sale"]}),
    ("red shoes, again", {"category": "shoes", "price": 120, "tags": ["red"]}),
    ("blue boots", {"category": "shoes", "price": 150, "tags": ["blue"]}),
    ("frying pan", {"category": "kitchen", "price": 30, "tags": []}),
]


@pytest.fixture
def shop(collection_name: str, client: Client, async_client: AsyncClient) -> UmbrellaVectorStore:
    store = UmbrellaVectorStore(collection_name, SHOP, client=client, async_client=async_client)
    texts, metadatas = zip(*CATALOGUE, strict=True)
    store.add_texts(list(texts), list(metadatas), ids=["p1", "p2", "p3", "p4"])
    return store


def test_filters_take_the_servers_json_on_metadata_keys(shop: UmbrellaVectorStore) -> None:
    def ids(flt: dict[str, object], k: int = 4) -> list[str | None]:
        return [d.id for d in shop.similarity_search("shoes?", k=k, filter=flt)]

    assert ids({"must": [{"key": "category", "match": "kitchen"}]}) == ["p4"]
    assert ids({"must": [{"key": "price", "range": {"gte": 100}}]}) == ["p2", "p3"]
    assert ids({"must": [{"key": "tags", "match": "sale"}]}) == ["p1"]
    assert ids({"must_not": [{"key": "category", "match": "shoes"}]}) == ["p4"]
    assert ids({"should": [{"key": "price", "range": {"lt": 50}}, {"key": "tags", "any": ["blue"]}]}) == ["p3", "p4"]
    assert ids({"must": [{"key": "page_content", "text": "boots"}]}) == ["p3"]  # the text is a payload field too
    assert ids({"must": [{"is_empty": {"key": "tags"}}]}) == ["p4"]
    hits = shop.similarity_search_with_score("shoes?", k=1, filter={"must": [{"has_id": ["p2"]}]})
    assert [(d.page_content, d.metadata["price"]) for d, _ in hits] == [("red shoes, again", 120)]

    assert shop.delete(filter={"must": [{"key": "category", "match": "shoes"}]})
    assert [d.id for d in shop.get_by_ids(["p1", "p2", "p3", "p4"])] == ["p4"]


async def test_filters_async(shop: UmbrellaVectorStore) -> None:
    flt = {"must": [{"key": "price", "range": {"lt": 100}}]}
    assert [d.id for d in await shop.asimilarity_search("shoes?", k=4, filter=flt)] == ["p1", "p4"]
    hits = await shop.asimilarity_search_with_score_by_vector(SHOP.table["frying pan"], k=1, filter=flt)
    assert hits[0][0].id == "p4" and hits[0][1] == pytest.approx(1.0, abs=1e-5)
    await shop.adelete(filter=flt)
    assert [d.id for d in await shop.aget_by_ids(["p4", "p3", "p1"])] == ["p3"]


@pytest.mark.parametrize("server_mmr", [True, False], ids=["server", "client"])
def test_mmr_trades_a_near_copy_for_variety(shop: UmbrellaVectorStore, client: Client, server_mmr: bool) -> None:
    store = UmbrellaVectorStore(shop.collection_name, SHOP, client=client, server_mmr=server_mmr)  # each path
    assert [d.id for d in store.similarity_search("shoes?", k=2)] == ["p1", "p2"]
    assert [d.id for d in store.max_marginal_relevance_search("shoes?", k=2, fetch_k=4)] == ["p1", "p3"]
    picked = store.max_marginal_relevance_search_by_vector(SHOP.table["shoes?"], k=2, fetch_k=4, lambda_mult=1.0)
    assert [d.id for d in picked] == ["p1", "p2"]  # lambda 1: relevance only
    only_shoes = {"must": [{"key": "category", "match": "shoes"}]}
    diverse = store.max_marginal_relevance_search("shoes?", k=3, fetch_k=4, filter=only_shoes)
    assert {d.id for d in diverse} == {"p1", "p2", "p3"} and diverse[0].page_content == "red shoes"


async def test_mmr_async(shop: UmbrellaVectorStore, async_client: AsyncClient) -> None:
    assert [d.id for d in await shop.amax_marginal_relevance_search("shoes?", k=2, fetch_k=4)] == ["p1", "p3"]
    here = UmbrellaVectorStore(shop.collection_name, SHOP, async_client=async_client, server_mmr=False)
    picked = await here.amax_marginal_relevance_search_by_vector(SHOP.table["shoes?"], k=2, fetch_k=4)
    assert [d.id for d in picked] == ["p1", "p3"]


ODD_IDS = ["1", "01", "1.0", "sku-1", " padded ", "Grüße/💡?&x=1", "a" * 256]


def test_string_ids_round_trip_exactly(collection_name: str, client: Client) -> None:
    vectors = {f"text {n}": _unit(1, n, 0) for n in range(len(ODD_IDS))}
    store = UmbrellaVectorStore(collection_name, TableEmbeddings(vectors), client=client)
    texts = list(vectors)
    assert store.add_texts(texts, ids=ODD_IDS) == ODD_IDS
    assert [d.id for d in store.get_by_ids(list(reversed(ODD_IDS)))] == list(reversed(ODD_IDS))
    assert {d.id for d in store.similarity_search("text 0", k=len(ODD_IDS))} == set(ODD_IDS)
    assert [d.page_content for d in store.get_by_ids(["01"])] == ["text 1"]  # "01" is not "1"
    assert [p.id for p in client.get_points(collection_name, ["1"])] == ["1"]  # stored as the string, not 1
    client.upsert(collection_name, [1], vectors=[_unit(0, 0, 1)], payloads=[{"page_content": "integer one"}])
    assert [(d.id, d.page_content) for d in store.get_by_ids(["1"])] == [("1", "text 0")]
    assert [(d.id, d.page_content) for d in store.get_by_ids([1])] == [("1", "integer one")]  # type: ignore[list-item]
    store.delete([1])  # type: ignore[list-item]
    store.delete(["1", "never-added"])
    assert [d.id for d in store.get_by_ids(["1", "01", "1.0"])] == ["01", "1.0"]
    generated = store.add_documents([Document(page_content="text 2"), Document(page_content="text 3", id="mine")])
    assert generated[1] == "mine" and len(generated[0]) == 36  # a UUID where the document had no id


@pytest.mark.parametrize(
    ("metric", "scores"),
    [("cosine", [1.0, 0.0, -1.0]), ("ip", [1.0, 0.0, -1.0]), ("l2", [0.0, math.sqrt(2), 2.0])],
)
def test_scores_are_the_servers_and_relevance_is_in_0_1(
    collection_name: str, client: Client, metric: str, scores: list[float]
) -> None:
    axes = TableEmbeddings({"same": [1.0, 0.0, 0.0], "orthogonal": [0.0, 1.0, 0.0], "opposite": [-1.0, 0.0, 0.0]})
    store = UmbrellaVectorStore(collection_name, axes, client=client, metric=metric)  # type: ignore[arg-type]
    store.add_texts(["same", "orthogonal", "opposite"], ids=["s", "o", "x"])
    assert client.get_collection(collection_name).metric == metric
    hits = store.similarity_search_with_score("same", k=3)
    assert [d.id for d, _ in hits] == ["s", "o", "x"]  # best first, whichever way the score points
    assert [score for _, score in hits] == pytest.approx(scores, abs=1e-5)
    relevance = store.similarity_search_with_relevance_scores("same", k=3)
    assert [r for _, r in relevance] == pytest.approx([1.0, 0.5, 0.0], abs=1e-5)
    assert [d.id for d, _ in store.similarity_search_with_relevance_scores("same", k=3, score_threshold=0.4)] == [
        "s",
        "o",
    ]


async def test_afrom_texts_creates_the_collection(umbrella_url: str, collection_name: str, client: Client) -> None:
    store = await UmbrellaVectorStore.afrom_texts(
        ["red shoes", "frying pan"],
        SHOP,
        metadatas=[{"category": "shoes"}, {"category": "kitchen"}],
        ids=["a", "b"],
        collection_name=collection_name,
        url=umbrella_url,
        metric="l2",
        collection_config={"payload_indexes": {"category": "keyword"}},
    )
    try:
        info = client.get_collection(collection_name)
        assert (info.dim, info.metric, info.payload_indexes) == (3, "l2", {"category": "keyword"})
        assert (await store.aget_by_ids(["b"]))[0] == Document(
            id="b", page_content="frying pan", metadata={"category": "kitchen"}
        )
        relevance = await store.asimilarity_search_with_relevance_scores("frying pan", k=1)
        assert relevance[0][1] == pytest.approx(1.0, abs=1e-5)
    finally:
        store.close()
        await store.aclose()


def test_from_texts_then_delete_collection(umbrella_url: str, collection_name: str) -> None:
    store = UmbrellaVectorStore.from_texts(["red shoes"], SHOP, collection_name=collection_name, url=umbrella_url)
    try:
        assert [d.page_content for d in store.similarity_search("shoes?", k=3)] == ["red shoes"]
        store.delete_collection()
        assert store.similarity_search("shoes?") == [] and store.get_by_ids(["x"]) == []  # empty, not an error
        store.add_texts(["blue boots"])  # made again on the next write
        assert [d.page_content for d in store.similarity_search("shoes?")] == ["blue boots"]
    finally:
        store.close()
