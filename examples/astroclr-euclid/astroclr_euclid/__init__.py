"""astroclr-euclid: a third-party astroclr plugin for Euclid VIS + NISP cutouts.

Everything is reached through the ``astroclr`` entry-point group (see ``hooks.py``); import
the submodules directly for the Python-level tools, e.g.
``from astroclr_euclid.synthetic import write_sample``.
"""

__version__ = "0.1.0"
