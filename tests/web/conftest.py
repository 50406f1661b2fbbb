"""The real-server fixtures of the end-to-end tests."""

from tests.e2e.conftest import server, server_factory  # noqa: F401  (fixtures, found by name)
