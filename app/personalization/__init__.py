"""Personalization: interaction events, user profiles, recommendations for a user, the trained ranker."""
