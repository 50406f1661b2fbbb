"""LlamaIndex vector store on an Umbrella server, through the umbrella-client SDK."""

from llama_index.vector_stores.umbrella.base import UmbrellaVectorStore
from llama_index.vector_stores.umbrella.filters import UnsupportedFilterError

__all__ = ["UmbrellaVectorStore", "UnsupportedFilterError"]
