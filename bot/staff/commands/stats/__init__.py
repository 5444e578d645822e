"""`reportbot stats`."""
