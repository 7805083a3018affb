"""The backup agent: scans a folder, uploads over CURVE, restores."""
