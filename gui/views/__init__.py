"""The console's views; each renders some state keys and registers their loaders."""
