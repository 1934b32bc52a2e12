"""The errors astroclr reports as one line (never a traceback): the user's input, or a plugin."""

from __future__ import annotations


class AstroclrError(Exception):
    """An error caused by the user's input: reported as one line, never as a traceback."""


class ConfigError(AstroclrError):
    """A configuration key or value is invalid."""


class PluginError(AstroclrError):
    """A plugin is missing, misnamed or broken."""
