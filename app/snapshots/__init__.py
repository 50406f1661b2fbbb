"""Snapshots: one file per collection state, listed, downloaded, deleted and restored in place."""
