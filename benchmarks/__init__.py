"""Virtual-time benchmarks that drive the real Adaptive Modbus engine.

Run with ``scripts/bench`` (or ``python -m benchmarks.run``). Every policy polls the
same simulated devices over the same modelled bus in virtual time; see
the Performance section of README.md for what is measured and how.
"""
