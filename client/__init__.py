"""Client side of the wire protocol: connection, downloads, event following, bridgectl."""
