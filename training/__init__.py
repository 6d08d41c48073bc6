"""Offline training, evaluation and export (needs the `train` extra: torch)."""
