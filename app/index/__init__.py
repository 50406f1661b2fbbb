"""In-memory indexes: HNSW graph, exact matrix, payload fields. Nothing here knows HTTP or SQLite."""
