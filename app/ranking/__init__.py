"""Learning to rank from interaction events: synthetic shops, ranker training, offline metrics."""
