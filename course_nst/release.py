"""Moved to :mod:`course_nst.instructor.release`; this name stays for ``python -m course_nst.release``."""

from __future__ import annotations

import sys

from .instructor.release import *  # noqa: F403 - the old import path
from .instructor.release import __all__, main  # noqa: F401

if __name__ == "__main__":
    sys.exit(main())
