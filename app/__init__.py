"""Umbrella: a vector similarity search service."""
