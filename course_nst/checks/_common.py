"""Shared machinery of the exercise checkers.

Each exercise is an :class:`Exercise`: a ``grade_id`` (the nbgrader id of the
notebook cell where the student writes the function), the function's name, and a
``diagnose`` function that returns a list of problems in words a student
understands (an empty list means every check passed).

``Exercise.check(fn)`` is what a notebook cell calls: it prints one line on
success, and the problems on failure, and never raises, so the rest of the
notebook still runs. ``Exercise.evaluate(fn)`` returns a :class:`CheckResult`
for the grader.
"""

from __future__ import annotations

import math
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CheckResult", "Exercise", "NOT_IMPLEMENTED", "Prediction"]

NOT_IMPLEMENTED = "not implemented yet: you have not written this function yet (it raises NotImplementedError)"


@dataclass
class CheckResult:
    """The outcome of checking one student function."""

    name: str
    passed: bool
    problems: list[str] = field(default_factory=list)
    not_implemented: bool = False

    def report(self) -> str:
        if self.passed:
            return f"{self.name}: all checks passed"
        if self.not_implemented:
            return f"{self.name}: {NOT_IMPLEMENTED}"
        lines = [f"{self.name}: {len(self.problems)} problem(s) found"]
        lines += [f"  - {p}" for p in self.problems]
        return "\n".join(lines)


@dataclass(frozen=True)
class Exercise:
    """One exercise: where it lives, what it teaches, and how to check it."""

    grade_id: str
    function: str
    diagnose: Callable[[Callable[..., Any]], list[str]]
    notebook: str
    teaches: str
    points: int = 1

    def evaluate(self, fn: Callable[..., Any]) -> CheckResult:
        """Run the checks on ``fn``; never raises."""
        if not callable(fn):
            return CheckResult(self.function, False, [f"expected a function, got {type(fn).__name__}"])
        try:
            problems = list(self.diagnose(fn))
        except NotImplementedError:
            return CheckResult(self.function, False, [NOT_IMPLEMENTED], not_implemented=True)
        except Exception as e:
            where = traceback.extract_tb(e.__traceback__)[-1]
            return CheckResult(
                self.function,
                False,
                [f"your function raised {type(e).__name__}: {e} (line {where.lineno}: {where.line})"],
            )
        return CheckResult(self.function, not problems, problems)

    def check(self, fn: Callable[..., Any]) -> None:
        """Print a one-line success message, or the problems found. Never raises."""
        print(self.evaluate(fn).report())


@dataclass(frozen=True)
class Prediction:
    """A prediction question: the student writes a number before running the experiment.

    In the notebook the answer cell (nbgrader ``grade_id``) assigns ``variable``; the
    next cell calls ``check_prediction(grade_id, value)``. A right answer (within
    ``rel_tol``) is told *why* it is right, a wrong one gets ``hint``, never the answer.

    Only a plain ``int`` or ``float`` counts as an answer: not a ``bool``, a string, a
    NumPy scalar or a subclass of ``float`` (whose comparisons could say anything), so the
    notebook's check and the grader (which receives only the number) always agree.
    """

    grade_id: str
    variable: str
    notebook: str
    question: str
    answer: float
    why: str
    hint: str
    rel_tol: float = 1e-6
    points: int = 1

    def __post_init__(self) -> None:
        if not self.variable.isidentifier():
            raise ValueError(f"prediction {self.grade_id!r}: variable {self.variable!r} is not a Python name")

    def evaluate(self, value: Any) -> CheckResult:
        """Compare ``value`` with the answer; never raises."""
        if value is None:
            return CheckResult(
                self.variable,
                False,
                [f"not answered yet: replace None with your prediction (a number) in {self.variable} = ..."],
            )
        if type(value) not in (int, float):
            return CheckResult(
                self.variable,
                False,
                [f"your prediction should be a plain number such as 4 or 0.5, got {type(value).__name__}"],
            )
        try:
            number = float(value)
        except OverflowError:  # an int too large for a float
            return CheckResult(self.variable, False, ["a number too large for a float is not it"])
        if not math.isfinite(number) or not math.isclose(number, self.answer, rel_tol=self.rel_tol, abs_tol=1e-9):
            return CheckResult(self.variable, False, [f"{number:g} is not it. Hint: {self.hint}"])
        return CheckResult(self.variable, True)

    def check(self, value: Any) -> None:
        """Print in one line whether the prediction is right (and why), or a hint. Never raises."""
        result = self.evaluate(value)
        print(f"{self.variable}: " + (f"right. {self.why}" if result.passed else "; ".join(result.problems)))
