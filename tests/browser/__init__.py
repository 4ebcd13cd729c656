"""Browser tests: the card and the panel in headless Chromium against a live HA."""
