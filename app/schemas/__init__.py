"""The wire contract: pydantic request and response models (what /docs shows)."""
