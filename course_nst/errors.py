"""The one exception type for mistakes a user can fix.

Every function that validates user input raises :class:`InputError` (a
``ValueError``) with a one-line message that says what is wrong and what to do.
The command line prints that line and exits with code 2.
"""

from __future__ import annotations

__all__ = ["InputError"]


class InputError(ValueError):
    """Bad input from the user: a missing file, an unknown layer, a negative size, ..."""
