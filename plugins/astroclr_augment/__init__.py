"""Built-in astroclr plugin: augment."""
