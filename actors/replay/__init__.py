"""The replay backend: answers from a recording."""
