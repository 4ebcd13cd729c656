"""Tests of the Home Assistant integration, run on a real HA from the test plugin."""
