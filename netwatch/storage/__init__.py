"""SQL history and persisted state, on SQLite (default, WAL) or PostgreSQL.

- ``models``: the typed schema (table and column names are a contract).
- ``engine``: ``create_engine_for(url)``.
- ``migrate``: ``upgrade``, ``current_revision``, ``check`` over the shipped ``migrations`` package.
- ``writer``: ``BatchWriter``, the batched writer the event loop puts rows into.
- ``rowwriter``: the bulk insert, compiled here and run by the writer's thread or a child process;
- ``driverwriter`` and ``binds``: what that child runs, the driver alone (no SQLAlchemy).
- ``repository``: reads and writes off the hot path (inventory mirror, states, runs, gaps).
- ``dml``: the dialect-specific insert-or-ignore and upsert statements both of those use.

Never imports prometheus_client, apscheduler or anything above it in the module map.
"""
