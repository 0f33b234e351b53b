"""Exercise checkers for the notebooks: friendly diagnostics, one line on success.

In a notebook::

    from course_nst.checks import check_content_cost
    check_content_cost(content_cost)      # prints "content_cost: all checks passed"

For a grader, :data:`EXERCISES` maps each exercise cell's nbgrader ``grade_id`` to its
:class:`Exercise`; ``EXERCISES[grade_id].evaluate(student_function)`` returns a
:class:`CheckResult` and never raises.

One module per notebook lists that notebook's exercises in its own ``EXERCISES`` list
(``convnets`` for 01, when present; ``content`` for 02; ``style`` for 03; ``transfer`` for
04; ``controls`` for 05); they are merged here. The diagnosis machinery they share is in
``diagnosis``, the :class:`Exercise` record in ``_common``.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from . import content, style, transfer
from ._common import NOT_IMPLEMENTED, CheckResult, Exercise, Prediction
from .content import check_content_cost
from .style import check_gram_matrix, check_layer_style_cost, check_style_cost
from .transfer import check_optimization_step, check_total_cost, check_total_variation

__all__ = [
    "EXERCISES",
    "PREDICTIONS",
    "CheckResult",
    "Exercise",
    "NOT_IMPLEMENTED",
    "Prediction",
    "check_prediction",
    "check_content_cost",
    "check_gram_matrix",
    "check_layer_style_cost",
    "check_optimization_step",
    "check_style_cost",
    "check_total_cost",
    "check_total_variation",
]

_SUBMODULES: list[ModuleType] = []

try:
    convnets = importlib.import_module(f"{__name__}.convnets")
except ModuleNotFoundError as e:  # the notebook-01 checkers are optional
    if e.name != f"{__name__}.convnets":
        raise  # convnets exists but one of its own imports is missing: say so
    convnets = None  # type: ignore[assignment]
else:
    _SUBMODULES.append(convnets)
    for _name in getattr(convnets, "__all__", ()):
        if _name.startswith("check_"):
            globals()[_name] = getattr(convnets, _name)
            __all__.append(_name)

_SUBMODULES[0:0] = [content, style, transfer]

# notebook 05 (controlling the result)
from . import controls  # noqa: E402
from .controls import check_guided_gram_matrix, check_match_colour_histogram  # noqa: E402

_SUBMODULES.append(controls)
__all__ += ["check_guided_gram_matrix", "check_match_colour_histogram"]


def _merge(modules: list[ModuleType], kind: str) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for module in modules:
        for exercise in getattr(module, kind, ()):
            if exercise.grade_id in merged:
                raise ValueError(
                    f"grade_id {exercise.grade_id!r} is defined twice "
                    f"(in {module.__name__} and in an earlier checks module)"
                )
            merged[exercise.grade_id] = exercise
    return merged


EXERCISES: dict[str, Exercise] = _merge(_SUBMODULES, "EXERCISES")
PREDICTIONS: dict[str, Prediction] = _merge(_SUBMODULES, "PREDICTIONS")
for _grade_id in PREDICTIONS.keys() & EXERCISES.keys():
    raise ValueError(f"grade_id {_grade_id!r} is both an exercise and a prediction question")


def check_prediction(grade_id: str, value: Any) -> None:
    """Say whether the prediction ``value`` for question ``grade_id`` is right (and why), or give a hint."""
    if grade_id not in PREDICTIONS:
        print(f"no prediction question is called {grade_id!r}; the questions are: {', '.join(sorted(PREDICTIONS))}")
        return
    PREDICTIONS[grade_id].check(value)
