"""Checks: each judges facts into findings; none does I/O of its own."""
