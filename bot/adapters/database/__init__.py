"""SQLAlchemy Core tables, the stores built on them, and migrations."""
