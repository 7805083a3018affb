"""One suite, both backends: every test runs against the mock core and the real server core."""
