"""The mock backend: persistent, evolving demo data behind the BackendCore contract."""
