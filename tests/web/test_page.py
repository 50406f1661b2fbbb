"""The product-search page at / in a real browser (Debian's chromium, driven by Playwright) against a real server.

One walk through what a shopper does, screenshots saved to test-artifacts/web/: the page asks for the key, refuses
a bad one, then searches by words, narrows by a facet, shows more like a result, a user's recommendations, and
searches by an uploaded photo. Skipped, saying why, where no Chromium or Playwright is installed.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from app.cli import main
from app.demo.pictures import product_picture, reshot
from app.demo.shop import shop_items
from tests.e2e.conftest import REPO_ROOT, ServerProcess

pytestmark = pytest.mark.e2e
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (make test installs it)")

KEY = "page-test-key"
SHOTS = REPO_ROOT / "test-artifacts" / "web"
CHROMIUM = os.environ.get("UMBRELLA_CHROMIUM") or next(
    (found for name in ("chromium", "chromium-browser", "google-chrome") if (found := shutil.which(name))), None
)


@pytest.fixture
def page(server_factory: Any) -> Iterator[tuple[Any, ServerProcess]]:
    if CHROMIUM is None:
        pytest.skip("no Chromium on this machine (Debian: apt-get install chromium; or set UMBRELLA_CHROMIUM)")
    server = server_factory(env={"UMBRELLA_API_KEY": KEY}).start()
    demo = ["demo", "products", "--products", "60", "--users", "30", "--url", server.url, "--api-key", KEY]
    loaded = CliRunner().invoke(main, demo, catch_exceptions=False)
    assert loaded.exit_code == 0, loaded.output
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])  # root in CI
        tab = browser.new_page(viewport={"width": 1280, "height": 900})
        problems: list[str] = []
        tab.on("pageerror", lambda error: problems.append(str(error)))
        yield tab, server
        browser.close()
    assert not problems, problems  # no script error anywhere in the walk


def _status(tab: Any, pattern: str) -> str:
    """Wait until the status line matches `pattern` (a regex) and return it."""
    tab.wait_for_function("p => new RegExp(p).test(document.getElementById('status').textContent)", arg=pattern)
    return str(tab.inner_text("#status"))


def _cards(tab: Any) -> list[dict[str, str]]:
    return tab.eval_on_selector_all(
        ".card",
        "cards => cards.map(c => ({id: c.dataset.id, title: c.querySelector('.title').textContent,"
        " meta: c.querySelector('.meta').textContent, img: (c.querySelector('img') || {}).src || ''}))",
    )


def test_a_shopper_walks_through_the_page(page: tuple[Any, ServerProcess]) -> None:
    tab, server = page
    items = {item.id: item for item in shop_items(60)}
    wanted = items[7].product

    tab.goto(f"{server.url}/")
    tab.wait_for_selector("#error:not([hidden])")
    assert "API key" in tab.inner_text("#error") and "401" in tab.inner_text("#error")
    tab.fill("#key", "not-the-key")
    tab.click("#key-save")
    tab.wait_for_function("document.getElementById('error').textContent.includes('401')")
    tab.screenshot(path=SHOTS / "01-bad-key.png")

    tab.fill("#key", KEY)
    tab.click("#key-save")
    tab.wait_for_selector("#collection option[value=shop-photos]", state="attached")
    assert tab.is_hidden("#error")
    tab.select_option("#collection", "shop")
    tab.wait_for_selector("#facets fieldset[data-field=category] input", state="attached")

    tab.fill("#words", f"{wanted.colour} {wanted.type}")
    tab.click("#search")
    assert "plan " in _status(tab, r"words · plan \w+ · mode hybrid · 60 candidates")
    top = _cards(tab)[0]
    assert wanted.type in top["title"] and top["img"].startswith("data:image/")
    tab.screenshot(path=SHOTS / "02-words.png", full_page=True)

    in_type = sum(item.product.type == "backpack" for item in items.values())
    tab.check("#facets fieldset[data-field=category] input[value=backpack]")
    _status(tab, rf" {in_type} candidates")
    cards = _cards(tab)
    assert cards and all("backpack" in card["meta"] for card in cards)
    tab.screenshot(path=SHOTS / "03-filter.png", full_page=True)

    first = cards[0]["id"]
    tab.click(".card >> nth=0 >> .more")
    _status(tab, rf"more like {re.escape(first)} ")
    assert first not in [card["id"] for card in _cards(tab)]  # the example never comes back
    assert all("backpack" in card["meta"] for card in _cards(tab))  # the filter still holds
    tab.screenshot(path=SHOTS / "04-more-like-this.png", full_page=True)

    tab.fill("#user", "shopper-1")
    tab.click("#user-go")
    assert "path ranker" in _status(tab, r"for shopper-1 · path ranker")
    tab.screenshot(path=SHOTS / "05-for-user.png", full_page=True)

    tab.uncheck("#facets fieldset[data-field=category] input[value=backpack]")
    tab.select_option("#collection", "shop-photos")
    tab.wait_for_selector("#drop:not([hidden])")
    photo = reshot(product_picture(wanted.type, wanted.colour, wanted.material, seed=wanted.id), seed=3)
    tab.fill("#words", "")
    tab.set_input_files("#photo", files=[{"name": "re-shot.jpg", "mimeType": "image/jpeg", "buffer": photo}])
    _status(tab, r"· photo · plan")
    cards = _cards(tab)
    assert cards[0]["id"] == "7" and cards[0]["img"].startswith("data:image/png;base64,")  # from the stored source
    tab.screenshot(path=SHOTS / "06-photo.png", full_page=True)


def test_the_page_and_its_files_need_no_key_and_no_internet(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.url) as http:
        for path in ("/", "/ui/app.js", "/ui/style.css"):
            response = http.get(path)
            assert response.status_code == 200, path
            assert not re.search(r"https?://", response.text), f"{path} reaches outside the server"
