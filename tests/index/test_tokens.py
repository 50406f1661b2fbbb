"""The keyword tokenizer: product codes, model numbers and accents findable however a shopper types them."""

from __future__ import annotations

import pytest

from app.index.tokens import document, field_text, match_expression, tokens


@pytest.mark.parametrize(
    ("stored", "typed"),
    [
        ("SKU-4411-B", "SKU-4411-B"),
        ("SKU-4411-B", "sku4411b"),
        ("SKU-4411-B", "sku 4411 b"),
        ("USB-C charger", "usb-c"),
        ("USB-C charger", "usbc"),
        ("65W", "65w"),
        ("65W charger", "65w"),
        ("Crème brûlée", "creme brulee"),
        ("Air Max 90", "AIR max"),
    ],
)
def test_a_code_typed_whole_in_parts_or_without_dashes_meets_the_stored_tokens(stored: str, typed: str) -> None:
    assert set(tokens(typed)) <= set(tokens(stored)), (tokens(typed), tokens(stored))


def test_a_code_keeps_its_whole_form_so_it_outranks_its_parts() -> None:
    assert tokens("SKU-4411-B") == ["sku4411b", "sku", "4411", "b"]
    assert tokens("65w") == ["65w"]
    assert tokens("2.5mm jack") == ["25mm", "2", "5mm", "jack"]


def test_letters_and_digits_run_together_stay_one_token_so_a_model_number_is_not_its_digits() -> None:
    assert "2" not in tokens("Blaze X2") and "x2" in tokens("Blaze X2")


def test_punctuation_alone_gives_no_query() -> None:
    assert tokens("!!! ---") == []
    assert match_expression("  ?? ") is None
    assert match_expression('say "hi" OR NOT') == '"say" OR "hi" OR "or" OR "not"'  # FTS5 operators are words here


def test_payload_values_become_text() -> None:
    assert list(field_text(["red", 42, True, {"a": 1}, 2.5])) == ["red", "42", "2.5"]
    assert list(field_text(None)) == [] and list(field_text(False)) == []
    assert document(["Nike Air", "SKU-1"]) == "nike air sku1 sku 1"
