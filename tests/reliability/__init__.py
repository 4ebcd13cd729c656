"""Reliability suite: the engine and the integration under injected faults."""
