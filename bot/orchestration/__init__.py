"""Carries each image and review through its steps, over the ports."""
