"""The built-in demo device: a seeded, reproducible simulated Modbus device."""
