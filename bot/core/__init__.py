"""The pure core: modbot's rules and words, with no I/O and no vendor SDK."""
