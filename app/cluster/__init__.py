"""Sharded, replicated collections on a Ray cluster: the same interfaces as a local collection, shards as actors."""
