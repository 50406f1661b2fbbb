"""A generated shop for demos, walkthroughs and tests: catalogue, product photos, shoppers and their events."""
