"""The synthetic shop: seeded, well-formed, and its clicks follow the truth it claims (position, utility, price)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from tests.support.synthetic_shop import CLICK, KINDS, PURCHASE, RATING, VIEW, Shop, add_dirt, generate_shop


@pytest.fixture(scope="module")
def shop() -> Shop:
    return generate_shop(2000, 300, seed=0)


def _shown_and_clicked(shop: Shop) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the view events, and whether each (session, item) was clicked."""
    log = shop.log
    views = np.flatnonzero(log.kind == VIEW)
    clicks = log.kind == CLICK
    key = log.session.astype(np.int64) * len(shop.item_ids) + log.item
    return views, np.isin(key[views], key[clicks])


def test_same_seed_same_shop_other_seed_other_shop() -> None:
    a, b, c = (generate_shop(300, 40, days=10, seed=s) for s in (3, 3, 4))
    assert np.array_equal(a.vectors, b.vectors) and a.payloads == b.payloads and a.events == b.events
    assert not np.array_equal(a.vectors, c.vectors)
    assert a.events != c.events


def test_shapes_and_types(shop: Shop) -> None:
    assert shop.vectors.shape == (2000, 32) and shop.vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(shop.vectors, axis=1), 1, atol=1e-5)
    assert len(set(shop.item_ids)) == 2000 and len(set(shop.user_ids)) == 300
    payload = shop.payloads[0]
    assert set(payload) == {"category", "price", "released"} and payload["category"].startswith("cat-")
    assert all(p["price"] > 0 for p in shop.payloads)
    times = [e["time"] for e in shop.events]
    assert times == sorted(times) and all(isinstance(t, float) for t in times)
    assert shop.start_time <= times[0] and times[-1] <= shop.end_time
    assert {e["type"] for e in shop.events} == set(KINDS)
    assert {e["item"] for e in shop.events} <= set(shop.item_ids)
    assert {e["user"] for e in shop.events} <= set(shop.user_ids)
    ratings = [e for e in shop.events if e["type"] == "rating"]
    assert ratings and all(e["value"] in {1, 2, 3, 4, 5} for e in ratings)
    assert all("value" not in e for e in shop.events if e["type"] != "rating")
    point = next(shop.points())
    assert point["id"] == "item-0" and len(point["vector"]) == 32 and point["payload"] == shop.payloads[0]
    assert sum(len(b) for b in shop.event_batches(1000)) == len(shop.events)


def test_no_item_is_shown_before_its_release(shop: Shop) -> None:
    released = np.array([p["released"] for p in shop.payloads])
    assert np.all(shop.log.time >= released[shop.log.item])
    assert released.min() < shop.start_time < released.max() <= shop.end_time  # some old items, some new ones


def test_every_funnel_step_follows_the_one_before(shop: Shop) -> None:
    log = shop.log
    key = log.session.astype(np.int64) * len(shop.item_ids) + log.item
    for step in range(CLICK, RATING + 1):
        later, earlier = np.flatnonzero(log.kind == step), np.flatnonzero(log.kind == step - 1)
        first_before = dict(zip(key[earlier].tolist(), log.time[earlier].tolist(), strict=True))
        before = np.array([first_before.get(k, np.inf) for k in key[later].tolist()])
        assert len(later) and np.all(before < log.time[later])


def test_click_rate_is_realistic(shop: Shop) -> None:
    _, clicked = _shown_and_clicked(shop)
    assert 0.05 < clicked.mean() < 0.15
    assert 0.1 < np.count_nonzero(shop.log.kind == PURCHASE) / np.count_nonzero(shop.log.kind == CLICK) < 0.3


def test_top_positions_get_more_clicks(shop: Shop) -> None:
    views, clicked = _shown_and_clicked(shop)
    position = shop.log.position[views]
    first, last = clicked[position == 0].mean(), clicked[position == 9].mean()
    assert first > 2.5 * last  # the examination model alone gives log2(11) ≈ 3.5


def test_clicked_items_have_higher_true_utility(shop: Shop) -> None:
    views, clicked = _shown_and_clicked(shop)
    log = shop.log
    utility = shop.truth.utility(log.user[views], log.item[views], log.time[views])
    assert utility[clicked].mean() - utility[~clicked].mean() > 0.5 * utility.std()


def test_clicked_items_are_priced_nearer_the_users_preference(shop: Shop) -> None:
    views, clicked = _shown_and_clicked(shop)
    truth = shop.truth
    gap = np.abs(truth.item_log_price[shop.log.item[views]] - truth.user_log_price[shop.log.user[views]])
    assert gap[clicked].mean() < gap.mean() - 0.1


def test_quality_drives_popularity_but_the_vector_does_not_show_it(shop: Shop) -> None:
    truth = shop.truth
    clicks = np.bincount(shop.log.item[shop.log.kind == CLICK], minlength=len(shop.item_ids))
    assert np.corrcoef(clicks, truth.item_quality)[0, 1] > 0.2
    own_centroid = np.einsum("id,id->i", shop.vectors, truth.centroids[truth.item_category])
    assert 0.4 < own_centroid.mean() < 0.8  # category is in the vector, but not exactly


def test_utility_broadcasts_one_user_over_many_items(shop: Shop) -> None:
    items = np.arange(50)
    one = shop.truth.utility(7, items, shop.end_time)
    each = [float(shop.truth.utility(7, i, shop.end_time)) for i in items.tolist()]
    assert one.shape == (50,) and np.allclose(one, each)


def test_dirt_is_counted_and_dropping_it_gives_back_the_clean_log() -> None:
    events = generate_shop(300, 40, days=10, seed=1).events
    dirty, dirt = add_dirt(events, seed=2, duplicates=0.02, unknown_items=0.01, bad_times=0.02)
    assert dirt.duplicates > 0 and dirt.unknown_items > 0 and dirt.bad_time_strings > 0 and dirt.future_times > 0
    assert len(dirty) == len(events) + dirt.total
    late = events[-1]["time"] + 365 * 86_400
    ghost = [e["item"].startswith("ghost-") for e in dirty]
    string = [isinstance(e["time"], str) for e in dirty]
    future = [not s and e["time"] > late for e, s in zip(dirty, string, strict=True)]
    assert (sum(ghost), sum(string), sum(future)) == (dirt.unknown_items, dirt.bad_time_strings, dirt.future_times)
    clean = [e for e, *bad in zip(dirty, ghost, string, future, strict=True) if not any(bad)]
    as_key = Counter(tuple(sorted(e.items())) for e in clean)
    assert sum(n - 1 for n in as_key.values()) == dirt.duplicates
    assert set(as_key) == {tuple(sorted(e.items())) for e in events} and len(as_key) == len(events)
