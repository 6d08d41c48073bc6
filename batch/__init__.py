"""Classifying whole music libraries: the `genre` command line (no torch)."""
