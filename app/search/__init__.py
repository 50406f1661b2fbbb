"""Search: queries embedded, planned (exact or graph) and answered over a collection's read view."""
