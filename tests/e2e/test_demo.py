"""`umbrella demo products` against a real server: two collections, events, a trained ranker, searches that work."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from app.cli import main
from app.demo.pictures import product_picture, reshot
from app.demo.shop import shop_items
from tests.e2e.conftest import ServerProcess

pytestmark = pytest.mark.e2e


def test_demo_products_loads_a_shop_that_every_walkthrough_can_use(server: ServerProcess) -> None:
    args = ["demo", "products", "--products", "60", "--users", "30", "--url", server.url]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    items = {item.id: item for item in shop_items(60)}
    with server.client() as http:
        shop, photos = http.get("/collections/shop").json(), http.get("/collections/shop-photos").json()
        assert (shop["count"], photos["count"]) == (60, 60)
        assert shop["payload_indexes"]["category"] == "keyword" and shop["lexical"]["fields"] == ["sku", "brand"]
        ranker = http.get("/collections/shop/ranker")
        assert ranker.status_code == 200
        assert http.get("/collections/shop/users/shopper-1/recommendations?k=5").json()["path"] == "ranker"

        # a product's SKU finds it; its words find products of its type; a re-shot photo finds the product
        item = items[7]
        by_code = http.post("/collections/shop/search", json={"text": item.product.sku.lower(), "k": 1}).json()
        assert by_code["results"][0]["id"] == 7 and by_code["results"][0]["payload"]["thumbnail"].startswith("data:")
        words = f"{item.product.colour} {item.product.type}"
        by_words = http.post("/collections/shop/search", json={"text": words, "k": 5}).json()["results"]
        assert by_words[0]["payload"]["category"] == item.product.type
        p = item.product
        photo = reshot(product_picture(p.type, p.colour, p.material, seed=p.id), seed=1)
        by_photo = http.post("/collections/shop-photos/search/image", files={"file": ("q.jpg", photo)}).json()
        assert by_photo["results"][0]["id"] == 7

    again = CliRunner().invoke(main, args)
    assert again.exit_code == 1 and "--replace" in again.output  # never loads over a collection by accident
    replaced = CliRunner().invoke(main, [*args, "--replace"], catch_exceptions=False)
    assert replaced.exit_code == 0
    with server.client() as http:
        assert http.get("/collections/shop").json()["count"] == 60
