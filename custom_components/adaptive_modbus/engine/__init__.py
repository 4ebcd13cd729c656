"""Adaptive Modbus engine: HA-free adaptive polling of Modbus devices.

Imports nothing from Home Assistant. Time and transport are injected.
"""
