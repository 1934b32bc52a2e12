"""The plugin contract: hook specs, the typed specs they yield, and the registry that loads them."""
