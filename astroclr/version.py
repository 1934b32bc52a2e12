"""The astroclr version (its own module, so no part of astroclr imports the package root)."""

__version__ = "0.2.0"
