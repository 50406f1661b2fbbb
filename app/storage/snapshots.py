"""Snapshot files: one tar holding a database copy, optional side files and a JSON manifest with checksums."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import tarfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.storage.checkpoint import sha256_file
from app.storage.files import fsync_path

FORMAT = 1
MANIFEST = "manifest.json"
SUFFIX = ".snapshot"
_MEMBER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")  # plain file names: nothing can leave the folder


class CorruptSnapshot(Exception):
    """The file is not a readable snapshot, or a part does not match its checksum."""


def write_snapshot(
    folder: Path,
    fill: Callable[[Path], dict[str, Any]],
    name_of: Callable[[dict[str, Any]], str],
    extras: dict[str, Path] | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Write a snapshot into `folder` atomically; returns its path and manifest.

    `fill(work)` puts the files to pack into an empty temp folder and returns the manifest's fields, from
    which `name` makes the file name; `extras` are more files to copy in (name → path; missing ones are
    skipped). The tar is written to a temp name, fsynced and renamed, so a crash never leaves a half file
    under a snapshot's name.
    """
    folder.mkdir(parents=True, exist_ok=True)
    work = folder / f".tmp-{uuid.uuid4().hex}"
    work.mkdir()
    part = folder / f".tmp-{uuid.uuid4().hex}.part"
    try:
        fields = fill(work)
        for name, source in (extras or {}).items():
            try:
                shutil.copyfile(source, work / name)
            except FileNotFoundError:
                continue
        files = {p.name: sha256_file(p) for p in sorted(work.iterdir())}
        manifest = {"format": FORMAT, **fields, "files": files}
        with tarfile.open(part, "w") as tar:
            data = json.dumps(manifest, indent=1).encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mtime = len(data), int(os.path.getmtime(work))
            tar.addfile(info, io.BytesIO(data))  # first, so listing reads only the head of each file
            for name in files:
                tar.add(work / name, arcname=name, recursive=False)
        fsync_path(part)
        path = folder / name_of(manifest)
        os.replace(part, path)
        fsync_path(folder)
        return path, manifest
    finally:
        shutil.rmtree(work, ignore_errors=True)
        part.unlink(missing_ok=True)


def read_manifest(path: Path) -> dict[str, Any]:
    try:
        with tarfile.open(path, "r:") as tar:
            member = tar.next()
            if member is None or member.name != MANIFEST or not member.isfile():
                raise CorruptSnapshot(f"{path.name} does not start with a manifest")
            stream = tar.extractfile(member)
            assert stream is not None
            manifest = json.loads(stream.read(1 << 20))
    except (OSError, tarfile.TarError, ValueError, EOFError) as err:
        raise CorruptSnapshot(f"{path.name} is not a readable snapshot: {err}") from err
    if (
        not isinstance(manifest, dict)
        or manifest.get("format") != FORMAT
        or not isinstance(manifest.get("files"), dict)
    ):
        raise CorruptSnapshot(f"{path.name} has a manifest this server does not understand")
    return manifest


def unpack_snapshot(path: Path, folder: Path) -> dict[str, Any]:
    """Extract the files the manifest lists into the new folder `folder`, each checked against its checksum.

    Only plain members named in the manifest are written, one by one (never `extractall`), so a crafted
    tar cannot write outside `folder`. Raises CorruptSnapshot, leaving a partly filled folder to the caller.
    """
    manifest = read_manifest(path)
    wanted: dict[str, str] = manifest["files"]
    if not all(isinstance(n, str) and _MEMBER_RE.fullmatch(n) and n != MANIFEST for n in wanted):
        raise CorruptSnapshot(f"{path.name} lists a file name this server will not write")
    folder.mkdir(parents=True)
    found: set[str] = set()
    try:
        with tarfile.open(path, "r:") as tar:
            for member in tar:
                if member.name not in wanted or member.name in found:
                    continue
                stream = tar.extractfile(member) if member.isfile() else None
                if stream is None:
                    raise CorruptSnapshot(f"{path.name}: {member.name} is not a plain file")
                with open(folder / member.name, "wb") as out:
                    shutil.copyfileobj(stream, out, 1 << 20)
                    out.flush()
                    os.fsync(out.fileno())
                if sha256_file(folder / member.name) != wanted[member.name]:
                    raise CorruptSnapshot(f"{path.name}: {member.name} does not match its checksum")
                found.add(member.name)
    except (OSError, tarfile.TarError, EOFError) as err:
        raise CorruptSnapshot(f"{path.name} is not a readable snapshot: {err}") from err
    if missing := set(wanted) - found:
        raise CorruptSnapshot(f"{path.name} lacks {sorted(missing)}")
    fsync_path(folder)
    return manifest
