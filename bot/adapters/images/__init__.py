"""Pillow: checks, normalisation, animations and the decode memory budget."""
