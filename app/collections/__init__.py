"""Collections: the points of each collection, durable in SQLite, searchable in memory, behind a read view."""
