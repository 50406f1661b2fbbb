"""The server's own embedder (the bundled all-MiniLM-L6-v2, real): texts and queries go as words, nothing is
embedded here."""

from __future__ import annotations

import pytest
from langchain_umbrella import UmbrellaVectorStore
from umbrella_client import AsyncClient, Client

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

CATALOGUE = {
    "shoe-1": ("Men's lightweight running shoes, breathable mesh", "shoes"),
    "shoe-1b": ("Men's lightweight running shoes, breathable mesh, size 44", "shoes"),
    "shoe-2": ("Trail running sneakers with grippy soles", "shoes"),
    "bag-1": ("Red leather handbag with gold clasp", "bags"),
    "bag-2": ("Canvas tote bag for groceries", "bags"),
    "pan-1": ("Stainless steel frying pan, 28 cm", "kitchen"),
    "kettle-1": ("Electric kettle, 1.7 litres, auto shut-off", "kitchen"),
    "head-1": ("Noise cancelling wireless headphones", "electronics"),
}
IDS = list(CATALOGUE)
TEXTS = [text for text, _ in CATALOGUE.values()]
METADATAS = [{"category": category} for _, category in CATALOGUE.values()]
SHOES = "lightweight running shoes with breathable mesh"  # shoe-1 (0.91), its near-copy shoe-1b (0.78), shoe-2 (0.60)


def test_the_server_embeds_texts_and_queries(collection_name: str, client: Client) -> None:
    store = UmbrellaVectorStore(
        collection_name, client=client, collection_config={"payload_indexes": {"category": "keyword"}}
    )
    assert store.embeddings is None
    assert store.add_texts(TEXTS, METADATAS, ids=IDS) == IDS
    info = client.get_collection(collection_name)
    assert (info.dim, info.embedder) == (384, {"kind": "text", "model": "all-MiniLM-L6-v2"})

    assert store.similarity_search("a purse", k=1)[0].id == "bag-1"
    kitchen = {"must": [{"key": "category", "match": "kitchen"}]}
    assert [d.id for d in store.similarity_search("something to cook eggs in", k=1, filter=kitchen)] == ["pan-1"]
    hits = store.similarity_search_with_score("bluetooth earphones", k=2)
    assert hits[0][0].id == "head-1" and 0.3 < hits[0][1] <= 1.0 and hits[0][1] > hits[1][1]  # cosine, higher first
    assert store.similarity_search_with_relevance_scores("bluetooth earphones", k=1)[0][1] == pytest.approx(
        (1 + hits[0][1]) / 2, abs=1e-5
    )
    # the best hit's near-copy comes second in a plain search; MMR picks something else instead
    assert [d.id for d in store.similarity_search(SHOES, k=2)] == ["shoe-1", "shoe-1b"]
    diverse = [d.id for d in store.max_marginal_relevance_search(SHOES, k=2, fetch_k=8)]
    assert diverse[0] == "shoe-1" and diverse[1] != "shoe-1b"

    by_vector = client.get_points(collection_name, ["kettle-1"], with_vector=True)[0].vector
    assert store.similarity_search_by_vector(by_vector.tolist(), k=1)[0].id == "kettle-1"  # vectors still work


async def test_async_from_texts_with_the_server_embedder(collection_name: str, async_client: AsyncClient) -> None:
    store = await UmbrellaVectorStore.afrom_texts(
        TEXTS, None, METADATAS, ids=IDS, collection_name=collection_name, async_client=async_client
    )
    assert (await store.asimilarity_search("a purse", k=1))[0].page_content == "Red leather handbag with gold clasp"
    diverse = await store.amax_marginal_relevance_search(SHOES, k=2, fetch_k=8)
    assert diverse[0].id == "shoe-1" and diverse[1].id != "shoe-1b"
    await store.adelete(["bag-1"])
    assert [d.id for d in await store.aget_by_ids(["bag-1", "bag-2"])] == ["bag-2"]


def test_text_kept_only_as_the_servers_source(collection_name: str, client: Client) -> None:
    store = UmbrellaVectorStore(collection_name, client=client, text_key=None)
    store.add_texts(TEXTS[:4], METADATAS[:4], ids=IDS[:4])
    assert client.get_collection(collection_name).store_source
    stored = client.get_points(collection_name, ["bag-1"], with_source=True)[0]
    assert stored.payload == {"category": "bags"} and stored.source == {"text": TEXTS[3]}  # not in the payload
    hit = store.similarity_search("a purse", k=1)[0]
    assert (hit.id, hit.page_content, hit.metadata) == ("bag-1", TEXTS[3], {"category": "bags"})
    assert [d.page_content for d in store.get_by_ids(["shoe-2", "shoe-1"])] == [TEXTS[2], TEXTS[0]]


def test_a_collection_written_by_other_tools_reads_its_source(collection_name: str, client: Client) -> None:
    # e.g. `umbrella import` into a store_source collection: no page_content in the payloads
    client.create_collection(collection_name, embedder={"kind": "text"}, store_source=True)
    client.upsert(collection_name, IDS, texts=TEXTS, payloads=METADATAS)
    store = UmbrellaVectorStore(collection_name, client=client)
    hit = store.similarity_search("a purse", k=1)[0]
    assert (hit.id, hit.page_content, hit.metadata) == ("bag-1", TEXTS[3], {"category": "bags"})
    assert store.get_by_ids(["pan-1"])[0].page_content == TEXTS[5]


def test_server_mode_needs_a_collection_with_a_text_embedder(collection_name: str, client: Client) -> None:
    client.create_collection(collection_name, dim=3)
    store = UmbrellaVectorStore(collection_name, client=client)
    with pytest.raises(ValueError, match="no text embedder"):
        store.add_texts(["words"])
