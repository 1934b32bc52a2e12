"""Hook implementations of the built-in augment plugin."""

from astroclr import hookimpl
