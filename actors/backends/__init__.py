"""What both backends share: the worker shell, the BackendCore contract, the common rules."""
