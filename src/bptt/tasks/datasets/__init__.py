"""Real sequence datasets that work offline."""
