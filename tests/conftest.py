# ruff: noqa: I001  (custom_components must be imported before anything else)
"""Root test configuration.

HA's test plugin puts its own ``custom_components`` package first on the import
path; importing ours here, before anything else, makes HA find the integration.
"""

import custom_components  # noqa: F401  (must stay the first import)

import os

from hypothesis import settings

# CI runs the property tests on a fixed sequence of examples (a gate must be
# reproducible); local runs keep exploring new random examples.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
