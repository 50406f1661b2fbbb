"""Learning to rank from interaction events: ranker training, offline metrics, loss curves."""
