"""The real backup server: SQLite catalog, blob store, CURVE agents' socket."""
