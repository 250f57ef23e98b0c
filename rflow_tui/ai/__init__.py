"""Node generation for live AI builds: the interface, generators, validation, fixtures."""
