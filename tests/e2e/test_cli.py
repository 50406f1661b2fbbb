"""The `umbrella` command line against a real server process: import, collections, export, bench."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from app.cli import main
from app.demo.pictures import product_picture
from tests.e2e.conftest import ServerProcess

pytestmark = pytest.mark.e2e


def _run(server: ServerProcess, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, [*args, "--url", server.url], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_import_export_and_bench_round_trip(server: ServerProcess, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(400, 8)).astype(np.float32)
    colours = ("red", "blue")
    lines = [json.dumps({"id": i, "vector": v.tolist(), "colour": colours[i % 2]}) for i, v in enumerate(vectors)]
    lines.insert(7, json.dumps({"id": "short", "vector": [1, 2, 3]}))  # line 8: not the collection's dimension
    lines.insert(3, "{broken")  # line 4
    source = tmp_path / "points.jsonl"
    source.write_text("\n".join(lines) + "\n")

    code, out, err = _run(server, "import", str(source), "-c", "things", "--create", "8", "--batch-size", "64")
    assert code == 1  # some rows were rejected: a script can tell
    assert "imported 400 of 402 rows" in out
    assert "line 4:" in err and "line 9:" in err  # the broken JSON, and the short vector after it
    assert not source.with_name(source.name + ".umbrella-import.json").exists()

    code, out, _ = _run(server, "collections")
    assert code == 0 and "things" in out and "400" in out

    exported = tmp_path / "out.jsonl"
    code, _, err = _run(server, "export", "-c", "things", "-o", str(exported), "--with-vectors")
    assert code == 0 and "exported 400 points" in err
    rows = {r["id"]: r for r in map(json.loads, exported.read_text().splitlines())}
    assert rows[5]["colour"] == "blue"
    np.testing.assert_allclose(rows[5]["vector"], vectors[5] / np.linalg.norm(vectors[5]), rtol=1e-5)

    code, out, _ = _run(server, "bench", "-c", "things", "--queries", "20", "--ef", "16,64")
    assert code == 0
    table = [line.split() for line in out.splitlines()[2:]]
    assert [row[0] for row in table] == ["16", "64"] and float(table[-1][1]) >= 0.9


def test_import_csv_into_a_text_collection(server: ServerProcess, tmp_path: Path) -> None:
    source = tmp_path / "catalogue.csv"
    source.write_text(
        "sku,title,price\n1,Red leather handbag,120\n2,Crimson running sneakers,80\n3,Stainless steel frying pan,35\n"
    )
    code, _, err = _run(
        server, "import", str(source), "-c", "shop", "--create-embedder", "text", "--id", "sku", "--text", "title",
        "--index", "price:float", "--lexical", "price",
    )  # fmt: skip
    assert code == 0, err
    with server.client() as http:
        hits = http.post("/collections/shop/search", json={"text": "red sports shoes", "k": 1}).json()["results"]
        info = http.get("/collections/shop").json()
        cheap = {"must": [{"key": "price", "range": {"lt": 100}}]}
        words = http.post("/collections/shop/search", json={"text": "35", "mode": "lexical", "filter": cheap}).json()
    assert hits[0]["id"] == 2 and hits[0]["payload"] == {"price": 80}
    assert info["payload_indexes"] == {"price": "float"} and info["lexical"]["fields"] == ["price"]
    assert [h["id"] for h in words["results"]] == [3] and words["plan"] == "lexical"
    code, _, err = _run(server, "import", str(source), "-c", "shop", "--index", "price:text")
    assert code == 2 and "FIELD:TYPE" in err


@pytest.mark.parametrize(
    ("config", "column", "values"),
    [
        ({"embedder": {"kind": "kmer", "k": 3}, "store_source": True}, "sequence", ["ACGTAC", "GGCA"]),
        ({"embedder": {"kind": "image"}, "store_source": True}, "image", ["red-bag.png", "blue-lamp.png"]),
        ({"embedder": {"kind": "image"}}, "image", ["red-bag.png", "blue-lamp.png"]),  # no sources: vectors go
        ({"dim": 3}, "vector", [[1.0, 0.0, 0.0], [0.0, 0.6, 0.8]]),
    ],
    ids=["kmer-with-sources", "image-with-sources", "image-without-sources", "vectors"],
)
def test_export_without_vectors_imports_back_into_a_twin(
    server: ServerProcess, tmp_path: Path, config: dict, column: str, values: list
) -> None:
    if column == "image":  # drawn here: the photos in examples/ are made by a script, not kept in git
        for name in values:
            colour, kind = name.removesuffix(".png").split("-")
            kind = {"bag": "backpack", "lamp": "desk lamp"}[kind]
            product_picture(kind, colour, "leather", seed=1).save(tmp_path / name)
    source = tmp_path / "in.jsonl"
    rows = [{"id": f"p-{i}", column: v, "n": i} for i, v in enumerate(values)]
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with server.client() as http:
        for name in ("original", "twin"):
            assert http.put(f"/collections/{name}", json=config).status_code in (200, 201)
    assert _run(server, "import", str(source), "-c", "original")[0] == 0

    exported = tmp_path / "out.jsonl"
    code, _, err = _run(server, "export", "-c", "original", "-o", str(exported))
    assert code == 0 and "exported 2 points" in err
    code, out, err = _run(server, "import", str(exported), "-c", "twin")
    assert code == 0 and "imported 2 of 2" in out, err

    ids = [r["id"] for r in rows]
    with server.client() as http:
        got = [
            http.post(
                f"/collections/{name}/points/get", json={"ids": ids, "with_vector": True, "with_source": True}
            ).json()["points"]
            for name in ("original", "twin")
        ]
    assert [p["payload"] for p in got[1]] == [{"n": 0}, {"n": 1}]
    for before, after in zip(*got, strict=True):
        np.testing.assert_allclose(after["vector"], before["vector"], rtol=1e-6)
        assert after.get("source") == before.get("source")  # kept where the original kept it
