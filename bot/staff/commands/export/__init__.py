"""`reportbot export`."""
