"""Reads and administration: one call path, request building and a namespace per service."""
