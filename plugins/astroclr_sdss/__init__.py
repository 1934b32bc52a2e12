"""Built-in astroclr plugin: sdss."""
