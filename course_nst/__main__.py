"""``python -m course_nst`` is the ``course-nst`` command."""

import sys

from .cli import main

sys.exit(main())
