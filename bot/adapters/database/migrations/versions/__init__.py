"""Schema revisions, applied in order by `modbot db upgrade` and at `modbot serve` start."""
