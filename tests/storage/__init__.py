"""Tests of app.storage: the SQLite point store and HNSW checkpoints."""
