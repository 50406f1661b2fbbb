"""Commands that talk to a running server through the SDK: import, export, collections, bench."""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import click
import numpy as np

from app.cli.importer import Rejected, import_file
from app.cli.mapping import Columns
from app.cli.rows import FORMATS, detect_format

URL = click.option(
    "--url", default="http://127.0.0.1:8000", show_default=True, envvar="UMBRELLA_URL", show_envvar=True,
    help="The server to talk to.",
)  # fmt: skip
API_KEY = click.option(
    "--api-key", default=None, envvar="UMBRELLA_API_KEY", show_envvar=True, help="Sent as the api-key header."
)


def _client(url: str, api_key: str | None) -> Any:
    from umbrella_client import Client

    return Client(url, api_key=api_key, timeout=120)


def _sender(client: Any, collection: str) -> Any:
    """A batch of point dicts → SDK upserts, one per kind of input; a refused point becomes Rejected."""
    from umbrella_client.errors import UmbrellaError

    def send(points: list[dict[str, Any]]) -> None:
        kinds: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for p in points:
            kinds[next(k for k in ("vector", "text", "image", "sequence") if k in p)].append(p)
        for kind, group in kinds.items():
            column = {"vector": "vectors", "text": "texts", "image": "images", "sequence": "sequences"}[kind]
            values: Any = [p[kind] for p in group]
            if kind == "vector":
                values = np.asarray(values, dtype=np.float32)  # one length: Columns checked it against dim
            try:
                ids, payloads = [p["id"] for p in group], [p.get("payload") for p in group]
                client.upsert(collection, ids, payloads=payloads, **{column: values})
            except UmbrellaError as err:
                if err.status is None or err.status >= 500 or err.status in (401, 404, 413, 429):
                    raise  # not about one point: stop, the state file lets a rerun resume
                culprit = _culprit(err.details, group)
                if culprit is None:
                    raise
                raise Rejected(culprit, err.message) from None

    return send


def _culprit(details: dict[str, Any], group: list[dict[str, Any]]) -> Any:
    if "id" in details:
        return details["id"]
    index = details.get("index")
    return group[index]["id"] if isinstance(index, int) and 0 <= index < len(group) else None


def _field_types(specs: tuple[str, ...]) -> dict[str, str]:
    types = ("keyword", "integer", "float", "bool")
    out = {}
    for spec in specs:
        field, _, kind = spec.rpartition(":")
        if not field or kind not in types:
            raise click.BadParameter(f"{spec!r}: write FIELD:TYPE, TYPE one of {', '.join(types)}")
        out[field] = kind
    return out


@click.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--collection", "-c", required=True, help="Collection to import into.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None, help="Default: from the file's suffix.")
@click.option("--id", "id_column", default="id", show_default=True, help="Column of ids ('' = row numbers).")
@click.option("--text", "text_column", default="text", show_default=True, help="Column of texts to embed.")
@click.option("--image", "image_column", default="image", show_default=True, help="Column of image paths, data: URIs.")
@click.option("--sequence", "sequence_column", default="sequence", show_default=True, help="Column of sequences.")
@click.option("--vector", "vector_column", default="vector", show_default=True, help="Column of vectors.")
@click.option("--payload", default=None, help="Comma-separated payload columns (default: every other column).")
@click.option("--create", "create_dim", type=int, default=None, help="Create the collection with this dimension.")
@click.option(
    "--create-embedder",
    type=click.Choice(["text", "clip", "image", "kmer"]),
    default=None,
    help="Create the collection with this embedder (its default model).",
)
@click.option(
    "--index",
    "indexes",
    multiple=True,
    callback=lambda _ctx, _param, specs: _field_types(specs),
    help="FIELD:TYPE (keyword, integer, float, bool): index a payload field, also on an existing collection. Repeat.",
)
@click.option(
    "--lexical",
    "lexical_fields",
    multiple=True,
    help="On --create: a field for keyword search. Repeat.",
)
@click.option("--batch-size", type=click.IntRange(1, 10_000), default=500, show_default=True)
@click.option("--restart", is_flag=True, help="Ignore the progress of an earlier interrupted run.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@URL
@API_KEY
def import_command(
    file: Path, collection: str, fmt: str | None, id_column: str, text_column: str, image_column: str,
    sequence_column: str, vector_column: str, payload: str | None, create_dim: int | None, create_embedder: str | None,
    indexes: dict[str, str], lexical_fields: tuple[str, ...], batch_size: int, restart: bool, no_progress: bool,
    url: str, api_key: str | None,
) -> None:  # fmt: skip
    """Import FILE (JSON Lines, CSV, Parquet or .npy) into a collection.

    Rows are sent in order in batches; an interrupted import resumes where it stopped when run again
    (upserts are idempotent by id). Rows the file or the server rejects are listed with their line.
    """
    fmt = fmt or detect_format(file)
    columns = Columns(
        id=id_column or None if fmt != "npy" else None,
        text=text_column,
        image=image_column,
        sequence=sequence_column,
        vector=vector_column if fmt != "npy" else "vector",
        payload=tuple(c.strip() for c in payload.split(",")) if payload else None,
        base_dir=file.parent,
        from_csv=fmt == "csv",
    )
    with _client(url, api_key) as client:
        if create_dim or create_embedder:
            from umbrella_client.errors import CollectionExists

            try:
                embedder = {"kind": create_embedder} if create_embedder else None
                lexical = {"fields": list(lexical_fields)} if lexical_fields else None
                client.create_collection(
                    collection, dim=create_dim, embedder=embedder, payload_indexes=indexes, lexical=lexical
                )
            except CollectionExists:
                pass
        for field, kind in indexes.items():  # on a collection that existed: added (built in the background)
            client.index_field(collection, field, kind)
        columns = dataclasses.replace(columns, dim=client.get_collection(collection).dim)
        report = import_file(
            file, fmt, columns, _sender(client, collection), collection=collection, batch_size=batch_size,
            resume=not restart, progress=not no_progress,
        )  # fmt: skip
    rate = report.imported / report.seconds if report.seconds else 0.0
    click.echo(
        f"imported {report.imported} of {report.rows} rows read in {report.seconds:.1f} s ({rate:,.0f} rows/s)"
        + (f", {report.skipped} already imported by an earlier run" if report.skipped else "")
    )
    if report.rejected:
        click.echo(f"{len(report.rejected)} rows rejected:", err=True)
        for line, why in report.rejected[:50]:
            click.echo(f"  line {line}: {why.removeprefix(f'line {line}: ')}", err=True)
        if len(report.rejected) > 50:
            click.echo(f"  … and {len(report.rejected) - 50} more", err=True)
        sys.exit(1)


@click.command("export")
@click.option("--collection", "-c", required=True)
@click.option("--out", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Default: stdout.")
@click.option("--with-vectors", is_flag=True, help="Write the stored vector of every point, not its source.")
@URL
@API_KEY
def export_command(collection: str, out: Path | None, with_vectors: bool, url: str, api_key: str | None) -> None:
    """Write every point of a collection as JSON Lines that `umbrella import` reads back.

    A row is the id, the payload's fields, and what the point was made from: its text, sequence or image
    (a data: URI) where the collection keeps sources, else its vector.
    """
    stream = out.open("w", encoding="utf-8") if out else sys.stdout
    written = 0
    try:
        with _client(url, api_key) as client:
            with_source = client.get_collection(collection).store_source and not with_vectors
            offset = None
            while True:
                page = client.scroll(collection, limit=1000, offset=offset, with_vector=True, with_source=with_source)
                for p in page.points:
                    stream.write(json.dumps(_export_row(p)) + "\n")
                written += len(page.points)
                if page.next_offset is None:
                    break
                offset = page.next_offset
    finally:
        if out:
            stream.close()
    click.echo(f"exported {written} points", err=True)


_ROW_COLUMNS = ("id", "vector", "text", "image", "sequence")  # what import reads as other than payload


def _export_row(point: Any) -> dict[str, Any]:
    if clash := sorted(set(point.payload or {}) & set(_ROW_COLUMNS)):
        raise click.ClickException(
            f"point {point.id!r} has a payload field named {clash[0]!r}, a column import reads as the point itself"
        )
    row: dict[str, Any] = {"id": point.id, **(point.payload or {})}
    source = point.source or {}  # a point sent as a vector has none
    if "image" in source:
        row["image"] = f"data:image;base64,{source['image']}"
    elif source:
        row.update(source)
    else:
        row["vector"] = np.asarray(point.vector).tolist()
    return row


@click.command("collections")
@URL
@API_KEY
def collections_command(url: str, api_key: str | None) -> None:
    """List the collections with their counts."""
    with _client(url, api_key) as client:
        infos = client.list_collections()
    click.echo(f"{'name':<24} {'count':>10} {'dim':>6} {'metric':<7} index")
    for info in infos:
        click.echo(f"{info.name:<24} {info.count:>10,} {info.dim:>6} {info.metric:<7} {info.index_state}")


@click.command("bench")
@click.option("--collection", "-c", required=True)
@click.option("--queries", type=click.IntRange(1, 10_000), default=200, show_default=True)
@click.option("-k", type=click.IntRange(1, 1000), default=10, show_default=True)
@click.option("--ef", default="16,32,64,128,256", show_default=True, help="Beam widths to try.")
@click.option("--seed", type=int, default=0)
@URL
@API_KEY
def bench_command(collection: str, queries: int, k: int, ef: str, seed: int, url: str, api_key: str | None) -> None:
    """Recall@k and queries/s of the collection's graph at several ef, against exact search.

    Queries are stored vectors sampled from the collection, so the numbers describe its own data.
    """
    with _client(url, api_key) as client:
        vectors = _sample(client, collection, queries, seed)
        truth = [{h.id for h in client.search(collection, v, k=k, exact=True, with_payload=False)} for v in vectors]
        click.echo(f"{len(vectors)} queries, k={k}")
        click.echo(f"{'ef':>6} {'recall@k':>9} {'queries/s':>10} {'p50 ms':>8}")
        for width in [int(x) for x in ef.split(",")]:
            latencies, found = [], 0
            for vector, expected in zip(vectors, truth, strict=True):
                started = time.perf_counter()
                hits = client.search(collection, vector, k=k, ef=width, with_payload=False)
                latencies.append(time.perf_counter() - started)
                found += len({h.id for h in hits} & expected)
            recall = found / sum(len(t) for t in truth)
            qps, p50_ms = len(vectors) / sum(latencies), float(np.median(latencies)) * 1e3
            click.echo(f"{width:>6} {recall:>9.3f} {qps:>10.0f} {p50_ms:>8.2f}")


def _sample(client: Any, collection: str, n: int, seed: int) -> list[np.ndarray]:
    """n stored vectors drawn at random from the first scroll page of up to 10,000 (5 × n when fewer)."""
    page = client.scroll(collection, limit=min(max(5 * n, 100), 10_000), with_vector=True, with_payload=False)
    if not page.points:
        raise click.ClickException(f"collection {collection!r} is empty")
    pool = [np.asarray(p.vector, dtype=np.float32) for p in page.points]
    return [pool[j] for j in np.random.default_rng(seed).permutation(len(pool))[:n].tolist()]
