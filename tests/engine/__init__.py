"""Tests of the HA-free polling engine (imported as ``adaptive_modbus_engine``)."""
