"""Tests of the analytics library."""
