"""Settings and errors shared by every layer."""
