"""Alembic's migration environment for modbot's schema, shipped inside the package."""
