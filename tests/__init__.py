"""Tests of Adaptive Modbus: the engine, the integration, the benchmark harness."""
