"""`umbrella demo products`: load a generated shop into a running server, so every walkthrough has data offline."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import click

from app.cli.remote import API_KEY, URL, _client
from app.demo.feedback import feedback_clicks
from app.demo.shop import shop_items, shopper_events

INDEXES = {"category": "keyword", "brand": "keyword", "colour": "keyword", "material": "keyword", "price": "float"}


@click.group("demo")
def demo_command() -> None:
    """Generated data for trying Umbrella out."""


@demo_command.command("products")
@click.option("--collection", "-c", default="shop", show_default=True, help="Products by words; NAME-photos by photo.")
@click.option("--products", "n", type=click.IntRange(10, 50_000), default=200, show_default=True)
@click.option("--users", type=click.IntRange(1, 10_000), default=60, show_default=True)
@click.option(
    "--searches",
    type=click.IntRange(0, 100_000),
    default=600,
    show_default=True,
    help="Clicks that came from a search in the shop's own words (events with a query): fine-tuning's pairs.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="The same seed gives the same shop.")
@click.option("--replace", is_flag=True, help="Drop the two collections first if they exist.")
@URL
@API_KEY
def products_command(
    collection: str, n: int, users: int, searches: int, seed: int, replace: bool, url: str, api_key: str | None
) -> None:  # fmt: skip
    """A shop of N products in two collections, and what shoppers did in it.

    COLLECTION holds titles and descriptions, embedded by the server's text model, with a keyword index over
    the SKU and brand and a thumbnail in each payload; COLLECTION-photos holds a drawn photo of each product
    (the model-free image embedder) with keywords over the titles. Both have the same ids and payload indexes
    (category, brand, colour, material, price). Views, clicks, carts and purchases of --users shoppers over
    the last 30 days go to COLLECTION, and its ranker is trained on them; so do --searches clicks that name the
    words searched, mostly the shop's slang (app/demo/feedback.py), the first 50 of them searched with "log".
    """
    from umbrella_client.errors import NotFound

    items = shop_items(n, seed)
    photos = f"{collection}-photos"
    with _client(url, api_key) as client:
        for name in (collection, photos):
            if replace:
                with contextlib.suppress(NotFound):
                    client.drop_collection(name)
            elif name in {c.name for c in client.list_collections()}:
                raise click.ClickException(f"collection {name!r} exists: --replace drops it, -c picks other names")
        ids = [item.id for item in items]
        client.create_collection(
            collection, embedder={"kind": "text"}, store_source=True, payload_indexes=INDEXES,
            lexical={"fields": ["sku", "brand"]},
        )  # fmt: skip
        texts = [item.product.text for item in items]
        _upload(client, collection, "titles", texts=texts, ids=ids, payloads=[i.payload() for i in items])
        client.create_collection(  # keywords over the titles: words beside a photo narrow it down
            photos, embedder={"kind": "image"}, store_source=True, payload_indexes=INDEXES,
            lexical={"fields": ["title", "sku", "brand"]},
        )  # fmt: skip
        pictures, plain = (item.picture() for item in items), [i.payload(thumbnail=False) for i in items]
        _upload(client, photos, "photos", images=pictures, ids=ids, payloads=plain)
        clicks = feedback_clicks(items, searches, now=time.time(), seed=seed)
        for searched in clicks[:50]:  # what the first searches showed: the items passed over teach fine-tuning too
            client.search(collection, text=searched["query"], k=10, with_payload=False, log=True)
        events = sorted(shopper_events(items, users, now=time.time(), seed=seed) + clicks, key=lambda e: e["time"])
        batches = (events[i : i + 1000] for i in range(0, len(events), 1000))
        accepted = sum(client.add_events(collection, batch).accepted for batch in batches)
        click.echo(f"{accepted:,} events of {users} shoppers; training the ranker", err=True)
        ranker = client.train_ranker(collection)
    auc = ranker.metrics.get("ranker", {}).get("auc")
    click.echo(
        f"{collection}: {n} products (words, keywords on sku and brand); {photos}: their photos; "
        f"{accepted:,} events ({searches} after a search); ranker trained in {ranker.seconds:.1f} s"
        + (f" (validation AUC {auc:.2f})" if auc is not None else "")
    )
    click.echo(f"try: open {url}/ and pick {collection!r}, or search for user shopper-1")


def _upload(client: Any, collection: str, what: str, **columns: Any) -> None:
    click.echo(f"{collection}: uploading {what}", err=True)
    summary = client.upload(collection, batch_size=100, **columns)
    if not summary.ok:
        raise click.ClickException(f"{len(summary.failed_ids)} points of {collection!r} failed: {summary.failed[0]}")
