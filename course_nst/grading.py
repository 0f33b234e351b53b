"""Moved to :mod:`course_nst.instructor.grading`; this name stays for ``python -m course_nst.grading``."""

from __future__ import annotations

import sys

from .instructor.grading import *  # noqa: F403 - the old import path
from .instructor.grading import __all__, main  # noqa: F401

if __name__ == "__main__":
    sys.exit(main())
