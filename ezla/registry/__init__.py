"""The ZUS registry: its own Litestar app, process and database."""
