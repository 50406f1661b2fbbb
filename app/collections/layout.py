"""Every file and folder name of a data directory and of a collection folder, spelled once.

A data directory holds `.lock` (storage/lockfile.py: one server per directory), `.snapshots/<name>/`
and one folder per collection. A collection folder holds DB_FILE, RANKER_FILE, FINETUNE_FILE, MODELS_DIR and the
checkpoint (`checkpoint.json` and the `hnsw-<seq>.bin` and `table-<seq>.bin` it names: storage/checkpoint.py owns
that format).
"""

from __future__ import annotations

import re
from pathlib import Path

DB_FILE = "points.db"  # the collection's SQLite database: points, payloads, sources, events
RANKER_FILE = "ranker.json"  # the trained ranker (trained from the events, so not derivable on open)
FINETUNE_FILE = "finetune.json"  # the last fine-tuning run of the text model: its report
MODELS_DIR = "models"  # text models tuned for this collection, one folder per version (models/<version>/)
SWITCH_FILE = "embedder-switch.json"  # the last switch of model (apply or rollback): its state, kept over a crash
VERSION_RE = re.compile(r"^ft-\d{8}T\d{12}Z$")  # a tuned model's version: "ft-" and the UTC time it was made
SNAPSHOTS_DIR = ".snapshots"  # beside the collections, so dropping or restoring one keeps its snapshots
TRASH_PREFIX = ".trash-"  # a folder being deleted; removed on start
INCOMING_PREFIX = ".incoming-"  # a snapshot being unpacked; removed on start
RESTORING_PREFIX = ".restoring-"  # the old folder set aside by a restore; settled on start
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")  # a plain folder name: nothing reaches outside


def is_collection(folder: Path) -> bool:
    """A folder holding a collection: hidden ones (snapshots, a restore's leftovers) never are."""
    return bool(NAME_RE.fullmatch(folder.name)) and (folder / DB_FILE).exists()


def snapshots_of(root: Path, name: str) -> Path:
    return root / SNAPSHOTS_DIR / name
