"""Alembic migrations for the netwatch schema, shipped inside the wheel (``netwatch db upgrade``)."""
