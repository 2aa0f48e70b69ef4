"""Ingestion: ``track``/``identify`` on the caller's thread, batching and delivery on one worker."""
