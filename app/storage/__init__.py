"""Durable state: the SQLite point store, HNSW checkpoints, atomic files and the data-dir lock."""
