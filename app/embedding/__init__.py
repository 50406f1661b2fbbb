"""Embedders: turn texts, images and sequences into vectors. Heavy libraries load lazily, inside each embedder."""
