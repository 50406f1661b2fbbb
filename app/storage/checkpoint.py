"""Checkpoints: the HNSW graph and the point table's image, named by a JSON manifest (sequence covered, checksums)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.storage.files import atomic_write_bytes, fsync_path

MANIFEST = "checkpoint.json"


@dataclass(frozen=True)
class Staged:
    """A file written aside for the next checkpoint, with its sha256."""

    path: Path
    sha256: str


class CorruptCheckpoint(Exception):
    """The manifest or graph file is missing a part or does not match its checksum."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def write_checkpoint(
    folder: Path, seq: int, save: Callable[[Path], None], info: dict[str, Any], table: Staged | None = None
) -> None:
    """Save a graph covering writes up to `seq`, and the point table's image (`table`, staged by the caller) as of
    the same write; a crash at any point leaves the previous checkpoint usable.

    Each file goes in under a new name holding its sequence and the manifest is replaced last, so the manifest
    only ever names complete, fsynced files.
    """
    name, table_name = f"hnsw-{seq}.bin", f"table-{seq}.bin"
    tmp = folder / (name + ".tmp")
    try:
        save(tmp)  # hnswlib writes in place; only ever let it write a temp file
        fsync_path(tmp)
        os.replace(tmp, folder / name)
        manifest = {"seq": seq, "file": name, "sha256": sha256_file(folder / name), **info}
        if table is not None:
            fsync_path(table.path)
            os.replace(table.path, folder / table_name)
            manifest |= {"table": table_name, "table_sha256": table.sha256}
        atomic_write_bytes(folder / MANIFEST, json.dumps(manifest, indent=1).encode())
    except BaseException:  # e.g. a full disk: leave only the previous checkpoint, and the space it did not use
        current = _named_files(folder)
        for leftover in (tmp, folder / name, folder / table_name, folder / (MANIFEST + ".tmp")):
            if leftover.name not in current:
                leftover.unlink(missing_ok=True)
        raise
    for old in [*folder.glob("hnsw-*.bin*"), *folder.glob("table-*.bin*")]:
        if old.name not in (name, table_name):
            old.unlink(missing_ok=True)


def _named_files(folder: Path) -> set[str]:
    """The files the manifest names now, if it can be read."""
    try:
        manifest = json.loads((folder / MANIFEST).read_bytes())
        return {str(manifest[key]) for key in ("file", "table") if key in manifest}
    except (OSError, ValueError, KeyError, TypeError):
        return set()


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The checkpoint's manifest; None when there is none; CorruptCheckpoint when it cannot be read."""
    path = folder / MANIFEST
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_bytes())
    except (OSError, ValueError) as err:
        raise CorruptCheckpoint(f"checkpoint in {folder} is unreadable: {err}") from err
    if not isinstance(manifest, dict):
        raise CorruptCheckpoint(f"checkpoint in {folder} is unreadable: not an object")
    return manifest


def read_checkpoint(folder: Path) -> tuple[Path, dict[str, Any]] | None:
    """The verified graph file and its manifest; None when there is none; CorruptCheckpoint when broken."""
    manifest = read_manifest(folder)
    if manifest is None:
        return None
    try:
        graph = folder / manifest["file"]
        if sha256_file(graph) != manifest["sha256"]:
            raise CorruptCheckpoint(f"{graph.name} does not match its checksum")
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise CorruptCheckpoint(f"checkpoint in {folder} is unreadable: {err}") from err
    return graph, manifest


def table_image(folder: Path, manifest: dict[str, Any]) -> tuple[Path, str] | None:
    """The point table's image that a checkpoint's manifest names, and its sha256 (checked when it is read); None
    when it names none (a checkpoint written before images were)."""
    name, digest = manifest.get("table"), manifest.get("table_sha256")
    if not isinstance(name, str) or not isinstance(digest, str) or "/" in name:
        return None
    return folder / name, digest
