"""Process-level helpers shared by actors, clients and the GUI: logging, endpoints, paths."""
