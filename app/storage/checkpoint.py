"""HNSW checkpoints: the graph file plus a JSON manifest (sequence covered, checksum, parameters)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.storage.files import atomic_write_bytes, fsync_path

MANIFEST = "checkpoint.json"


class CorruptCheckpoint(Exception):
    """The manifest or graph file is missing a part or does not match its checksum."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def write_checkpoint(folder: Path, seq: int, save: Callable[[Path], None], info: dict[str, Any]) -> None:
    """Save a graph covering writes up to `seq`; a crash at any point leaves the previous one usable.

    The graph goes to a new file named by its sequence and the manifest is replaced last, so the
    manifest only ever names a complete, fsynced file.
    """
    name = f"hnsw-{seq}.bin"
    tmp = folder / (name + ".tmp")
    try:
        save(tmp)  # hnswlib writes in place; only ever let it write a temp file
        fsync_path(tmp)
        os.replace(tmp, folder / name)
        manifest = {"seq": seq, "file": name, "sha256": sha256_file(folder / name), **info}
        atomic_write_bytes(folder / MANIFEST, json.dumps(manifest, indent=1).encode())
    except BaseException:  # e.g. a full disk: leave only the previous checkpoint, and the space it did not use
        current = _named_file(folder)
        for leftover in (tmp, folder / name, folder / (MANIFEST + ".tmp")):
            if leftover.name != current:
                leftover.unlink(missing_ok=True)
        raise
    for old in folder.glob("hnsw-*.bin*"):
        if old.name != name:
            old.unlink(missing_ok=True)


def _named_file(folder: Path) -> str | None:
    """The graph file the manifest names now, if it can be read."""
    try:
        return str(json.loads((folder / MANIFEST).read_bytes())["file"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def read_checkpoint(folder: Path) -> tuple[Path, dict[str, Any]] | None:
    """The verified graph file and its manifest; None when there is none; CorruptCheckpoint when broken."""
    path = folder / MANIFEST
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_bytes())
        graph = folder / manifest["file"]
        if sha256_file(graph) != manifest["sha256"]:
            raise CorruptCheckpoint(f"{graph.name} does not match its checksum")
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise CorruptCheckpoint(f"checkpoint in {folder} is unreadable: {err}") from err
    return graph, manifest
