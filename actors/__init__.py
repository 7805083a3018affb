"""The actors: bridge, mock backend (and later the real backup server), each a thin socket shell around a core."""
