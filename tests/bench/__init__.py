"""Tests of the benchmark harness (metrics, phases, trace loading, the README table)."""
