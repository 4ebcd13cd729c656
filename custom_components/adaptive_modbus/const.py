"""Constants of the Adaptive Modbus integration (HA glue)."""

from __future__ import annotations

from typing import Final

DOMAIN: Final = "adaptive_modbus"
NAME: Final = "Adaptive Modbus"

# config entry data
CONF_CONNECTION: Final = "connection"  # one of CONNECTION_*
CONNECTION_TCP: Final = "tcp"
CONNECTION_RTU_OVER_TCP: Final = "rtu_over_tcp"
CONNECTION_SERIAL: Final = "serial"
CONNECTION_DEMO: Final = "demo"
CONNECTIONS: Final = (
    CONNECTION_TCP,
    CONNECTION_RTU_OVER_TCP,
    CONNECTION_SERIAL,
    CONNECTION_DEMO,
)

CONF_HOST: Final = "host"
CONF_PORT: Final = "port"
CONF_SERIAL_PORT: Final = "serial_port"
CONF_BAUDRATE: Final = "baudrate"
CONF_BYTESIZE: Final = "bytesize"
CONF_PARITY: Final = "parity"
CONF_STOPBITS: Final = "stopbits"
CONF_SEED: Final = "seed"  # demo device only

CONF_DEVICES: Final = "devices"  # list of device dicts:
CONF_UNIT_ID: Final = "unit_id"
CONF_PROFILE: Final = "profile"  # profile id (file name in profiles/) or PROFILE_CUSTOM
CONF_REGISTER_MAP: Final = "register_map"  # YAML text, custom profile only
CONF_NAME: Final = "name"
PROFILE_CUSTOM: Final = "custom"
PROFILE_DEMO: Final = "demo"

# config entry version 2: one config subentry per device (version 1 kept them in
# data[CONF_DEVICES]); a device subentry's data holds CONF_UNIT_ID, CONF_PROFILE,
# CONF_NAME and, for custom maps, CONF_REGISTER_MAP; its unique id is the unit id
ENTRY_VERSION: Final = 2
SUBENTRY_DEVICE: Final = "device"
CONF_SUBENTRY_ID: Final = "subentry_id"  # in the hub's device dicts, never stored

# options
# absolute, for registers without one
CONF_DEFAULT_TOLERANCE: Final = "default_tolerance"
CONF_MIN_INTERVAL: Final = "min_interval"
CONF_MAX_INTERVAL: Final = "max_interval"
CONF_MAX_REGISTERS: Final = "max_registers"
CONF_TIMEOUT: Final = "timeout"
CONF_PAUSE: Final = "pause"
CONF_ADAPTIVE: Final = "adaptive"
CONF_FIXED_INTERVAL: Final = "fixed_interval"
CONF_CLOSE_AFTER_CYCLE: Final = "close_after_cycle"
# demand-driven polling: upper interval bound x this while a live view watches a unit
CONF_VIEWED_FACTOR: Final = "viewed_factor"

DEFAULT_PORT: Final = 502
DEFAULT_BAUDRATE: Final = 9600
DEFAULT_UNIT_ID: Final = 1
DEFAULT_SEED: Final = 42
DEFAULT_TOLERANCE: Final = 0.0
DEFAULT_MIN_INTERVAL: Final = 5.0
DEFAULT_MAX_INTERVAL: Final = 300.0
DEFAULT_MAX_REGISTERS: Final = 125
DEFAULT_TIMEOUT: Final = 3.0
DEFAULT_PAUSE: Final = 0.0
DEFAULT_FIXED_INTERVAL: Final = 30.0
DEFAULT_VIEWED_FACTOR: Final = 0.25

# unique id of a unit's register-intervals chart: <entry_id>_<unit>_<this> (image.py)
CHART_INTERVALS_KEY: Final = "chart_intervals"

# failed cycles in a row before a register's entities go unavailable
UNAVAILABLE_AFTER_FAILURES: Final = 3

STORAGE_VERSION: Final = 1
# s: learned state saved at most every 10 min (and on stop)
STORAGE_SAVE_DELAY: Final = 600.0
