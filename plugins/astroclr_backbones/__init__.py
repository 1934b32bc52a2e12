"""Built-in astroclr plugin: backbones."""
