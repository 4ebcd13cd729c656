"""Tests of the optimization loop (engine library, virtual time)."""
