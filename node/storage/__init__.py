"""The node's storage: the key schema, the one LevelDB adapter, its in-memory twin, and
the store that joins them. Nothing here imports a layer above the core."""
