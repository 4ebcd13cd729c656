"""Adaptive Modbus engine: HA-free adaptive polling of Modbus devices.

Imports nothing from Home Assistant. Time and transport are injected. Installed on its
own (``pip install .`` at the repository root) it is imported as
``adaptive_modbus_engine``; the Home Assistant integration vendors the same folder as
``custom_components.adaptive_modbus.engine``.

Everything the engine raises on purpose derives from :class:`AdaptiveModbusError`.
"""

from __future__ import annotations

from .errors import AdaptiveModbusError

# the package's one version; the integration's manifest.json carries the same
__version__ = "0.1.0"

__all__ = ["AdaptiveModbusError", "__version__"]
