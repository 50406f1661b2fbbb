"""Bulk import: rows → points → batches, sent in order, resumable, with rejected rows reported by line."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.cli.mapping import Columns
from app.cli.rows import Row, RowError, count_rows, read_rows


class Rejected(Exception):
    """The server refused one point of a batch (it names the point); the rest of the batch can go again."""

    def __init__(self, point_id: Any, message: str) -> None:
        super().__init__(message)
        self.point_id, self.message = point_id, message


Send = Callable[[list[dict[str, Any]]], None]  # upserts a batch; raises Rejected, or anything else to stop


@dataclass
class ImportReport:
    rows: int = 0  # rows read in this run
    imported: int = 0
    skipped: int = 0  # rows a previous, interrupted run already imported
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (line, why)
    seconds: float = 0.0


def state_path(path: Path) -> Path:
    return path.with_name(path.name + ".umbrella-import.json")


def import_file(
    path: Path,
    fmt: str,
    columns: Columns,
    send: Send,
    *,
    collection: str,
    batch_size: int = 500,
    resume: bool = True,
    progress: bool = True,
) -> ImportReport:
    """Import every row; after each acknowledged batch a state file records how far it got, so a rerun
    after an interruption starts there (upserts are idempotent, so overlap would be harmless anyway).
    """
    started = time.perf_counter()
    report = ImportReport()
    state = state_path(path)
    identity = {"file": str(path.resolve()), "size": path.stat().st_size, "mtime": path.stat().st_mtime}
    identity["collection"] = collection
    done = _resume_from(state, identity) if resume else 0
    report.skipped = done
    total = count_rows(path, fmt)
    bar = _progress_bar(total, done, progress)
    batch: list[tuple[Row, dict[str, Any]]] = []
    read = done

    def flush() -> None:
        nonlocal batch
        _send_batch(batch, send, report)
        bar.update(len(batch))
        batch = []
        _save_state(state, {**identity, "done_rows": read})

    try:
        for item in read_rows(path, fmt, skip=done):
            read += 1
            report.rows += 1
            if isinstance(item, RowError):
                report.rejected.append((_line_of(item), str(item)))
                bar.update(1)
                continue
            try:
                batch.append((item, columns.to_point(item)))
            except RowError as err:
                report.rejected.append((item.line, str(err)))
                bar.update(1)
                continue
            if len(batch) >= batch_size:
                flush()
        if batch:
            flush()
    finally:
        bar.close()
    state.unlink(missing_ok=True)  # finished: a rerun starts from the top
    report.seconds = time.perf_counter() - started
    return report


def _send_batch(batch: list[tuple[Row, dict[str, Any]]], send: Send, report: ImportReport) -> None:
    """Send; when the server names a bad point, report its line and send the others again."""
    pending = list(batch)
    while pending:
        try:
            send([point for _, point in pending])
        except Rejected as err:
            culprit = next((i for i, (_, p) in enumerate(pending) if p["id"] == err.point_id), None)
            if culprit is None:
                raise
            row, _ = pending.pop(culprit)
            report.rejected.append((row.line, err.message))
            continue
        report.imported += len(pending)
        return


def _line_of(err: RowError) -> int:
    text = str(err)
    return int(text.split(":")[0].removeprefix("line ")) if text.startswith("line ") else 0


def _resume_from(state: Path, identity: dict[str, Any]) -> int:
    try:
        saved = json.loads(state.read_text())
    except (OSError, ValueError):
        return 0
    same = all(saved.get(k) == v for k, v in identity.items())
    return int(saved.get("done_rows", 0)) if same else 0


def _save_state(state: Path, data: dict[str, Any]) -> None:
    tmp = state.with_name(state.name + ".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, state)


def _progress_bar(total: int, done: int, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, initial=done, unit="rows", disable=not enabled, dynamic_ncols=True, smoothing=0.1)
