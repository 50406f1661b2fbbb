"""langchain-umbrella: a LangChain vector store on an Umbrella server, through the umbrella-client SDK."""

from langchain_umbrella.vectorstores import UmbrellaVectorStore

__all__ = ["UmbrellaVectorStore"]
