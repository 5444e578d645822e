"""Conversation flows: pure logic, no I/O. A flow maps (saved draft, one inbound message) to replies."""
