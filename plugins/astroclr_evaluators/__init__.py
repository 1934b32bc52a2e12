"""Built-in astroclr plugin: evaluators."""
