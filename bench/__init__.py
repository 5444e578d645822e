"""Benchmarks and long-running proofs: they print figures; tests never time anything."""
