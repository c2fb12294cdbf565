"""Exceptions raised by the feasibility modeler.

The tree is small on purpose::

    FeasibilityError            base class; catch this to handle any feasibility failure
    ├── InputError              pilot attempts or lead list are malformed or inconsistent
    ├── CostError               cost or target parameters make no sense
    └── ModelError              a model could not be fitted to the data given

Every message says what is wrong and how to fix it, so the CLI and the API can show it as is.
"""

from __future__ import annotations

__all__ = ["CostError", "FeasibilityError", "InputError", "ModelError"]


class FeasibilityError(Exception):
    """Base class of every error raised by the feasibility package."""


class InputError(FeasibilityError):
    """Pilot attempts or the lead list are malformed or inconsistent."""


class CostError(FeasibilityError):
    """Cost, target or history parameters are invalid."""


class ModelError(FeasibilityError):
    """A model could not be fitted to the data given."""
