"""Hook implementations of the built-in evaluators plugin."""

from astroclr import hookimpl
