"""Collections and their registry: where storage, indexes and the planner meet."""
