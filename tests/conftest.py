"""Root test configuration.

HA's test plugin puts its own ``custom_components`` package first on the import
path; importing ours here, before anything else, makes HA find the integration.
"""

import custom_components  # noqa: F401  (must stay the first import)
