"""astroclr 0.1.0's ``astroclr.preprocess``, kept until 0.3.0: each name warns and names its new import
(the table is astroclr/moved.py; CHANGELOG.md has it too)."""

from astroclr.moved import alias

__getattr__, __dir__, __all__ = alias(__name__)
