"""The instructor's tools: student releases (:mod:`.release`) and grading (:mod:`.grading`).

Grading runs student code in :mod:`.kernel`, a separate process in an operating-system sandbox
(:mod:`.sandbox`), and computes every verdict in the grading process with checkers verified
by :mod:`.verify`. The modules here import nothing from :mod:`course_nst.cli`; the command line
imports them.
"""

from __future__ import annotations
