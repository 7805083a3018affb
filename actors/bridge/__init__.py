"""The bridge actor: routes requests to the real or mock backend, relays events."""
