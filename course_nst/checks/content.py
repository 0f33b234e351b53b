"""Checkers for notebook 02_content_cost: the content cost.

The shared diagnosis (factors, known slips, gradients) is in :mod:`.diagnosis`.
The public ``check_*`` functions print one line on success and the problems otherwise;
they never raise.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from ._common import Exercise, Prediction
from .diagnosis import (
    SHAPES,
    Factor,
    Wrong,
    as_float64,
    close,
    cost_cases,
    dedupe,
    dims_of,
    explain,
    fmt,
    gradient_problems,
    ref_content,
    seeded_tensor,
    shape_label,
)

__all__ = [
    "EXERCISES",
    "check_content_cost",
]


_CONTENT_FACTORS = [
    Factor("2", lambda d: 2.0, "did you forget the 1/2 in J_content = 1/2 * sum (a_C - a_G)^2?"),
    Factor(
        "1/(n_H*n_W*n_C), one over the number of elements",
        lambda d: 1.0 / d["N"],
        "did you use .mean() instead of .sum()? The lecture's content cost sums over every unit",
    ),
    Factor(
        "2/(n_H*n_W*n_C)",
        lambda d: 2.0 / d["N"],
        "did you use .mean() instead of .sum(), and forget the 1/2? The lecture's content cost is "
        "1/2 * sum (a_C - a_G)^2",
    ),
    Factor(
        "1/(2 n_H n_W n_C)",
        lambda d: 1.0 / (2 * d["N"]),
        "you divided by 4 n_H n_W n_C: 1/(4 n_H n_W n_C) is the Coursera assignment's content "
        "normalisation; this course uses the lecture's 1/2 (alpha absorbs the constant, but the "
        "formula here is J_content = 1/2 * sum (a_C - a_G)^2)",
    ),
    Factor(
        "1/(n_H n_W n_C)^2",
        lambda d: 1.0 / d["N"] ** 2,
        "you divided by (n_H n_W n_C)^2 (a mean, divided again?); the lecture's content cost is "
        "1/2 * sum (a_C - a_G)^2 with no other normalisation",
    ),
    Factor("1/2", lambda d: 0.5, "the constant in front is 1/2, applied once: did you halve twice?"),
]


_CONTENT_WRONGS = [
    Wrong(
        "norm",
        "you used the norm ||a_C - a_G|| instead of its square ||a_C - a_G||^2 (torch.norm "
        "without **2, or a square root): J_content = 1/2 * sum (a_C - a_G)^2",
    ),
    Wrong(
        "square_of_sum",
        "you squared the sum of the differences, (sum (a_C - a_G))^2, instead of summing the "
        "squares, sum (a_C - a_G)^2",
    ),
    Wrong(
        "no_square",
        "you summed the differences without squaring them: J_content = 1/2 * sum (a_C - a_G)^2",
    ),
    Wrong(
        "abs",
        "you summed absolute differences |a_C - a_G| instead of squares (a_C - a_G)^2",
    ),
]


def _content_wrongs(a_C: Tensor, a_G: Tensor) -> dict[str, Tensor]:
    d = a_C - a_G
    return {
        "norm": 0.5 * (d**2).sum().sqrt(),
        "square_of_sum": 0.5 * d.sum() ** 2,
        "no_square": 0.5 * d.sum(),
        "abs": 0.5 * d.abs().sum(),
    }


def diagnose_content_cost(fn: Callable[..., Any]) -> list[str]:
    name = "content_cost"

    def make(i: int, shape: tuple):
        a_C = seeded_tensor(shape, 100 + i)
        a_G = seeded_tensor(shape, 200 + i).requires_grad_(i == 0)
        return (a_C, a_G), {"a_C": a_C, "a_G": a_G}, [a_G]

    specs = [(shape_label(s), s, dims_of(s)) for s in SHAPES]
    problems, cases, out, (_, args, grad_inputs) = cost_cases(fn, name, make, ref_content, _content_wrongs, specs)
    if not cases:
        return problems
    problems += explain(cases, name, _CONTENT_FACTORS, _CONTENT_WRONGS)
    if problems:
        return dedupe(problems)

    # hand-made cases: identical activations cost nothing; a small example by hand
    z = torch.zeros(1, 2, 2, 2)
    hand = [
        ("two identical activations", z + 0.3, z + 0.3),
        ("a_C all 0 and a_G all 1, shape [1, 2, 2, 2]", z, z + 1.0),
    ]
    for label, a_C, a_G in hand:
        got = as_float64(fn(a_C, a_G))
        want = ref_content(a_C.double(), a_G.double())
        if got is None or got.numel() != 1 or not close(got.reshape(()), want):
            shown = "a non-number" if got is None else fmt(float(got.reshape(-1)[0]))
            return [f"wrong value for {label}: expected {fmt(float(want))}, got {shown}"]

    # gradients flow back to a_G: dJ/da_G = a_G - a_C
    a_C, a_G = args
    want_grad = (a_G.detach() - a_C).double()
    problems += gradient_problems(out, grad_inputs, [want_grad], name, "a_G")
    return dedupe(problems)


# --------------------------------------------------------------------------- the exercises

EXERCISES: list[Exercise] = [
    Exercise(
        grade_id="content_cost",
        function="content_cost",
        diagnose=diagnose_content_cost,
        notebook="02_content_cost",
        teaches="The content cost compares two images' activations at one layer: J_content = 1/2 * sum (a_C - a_G)^2.",
        points=1,
    ),
]

_BY_ID = {ex.grade_id: ex for ex in EXERCISES}

check_content_cost = _BY_ID["content_cost"].check


# --------------------------------------------------------------------------- prediction questions

PREDICTIONS: list[Prediction] = [
    Prediction(
        grade_id="predict_content_growth",
        variable="predict_content_growth",
        notebook="02_content_cost",
        question="C and G both become twice as wide and twice as tall (the same scenes at twice the "
        "resolution). By what factor does J_content at one layer grow, roughly?",
        answer=4,
        why="J_content = 1/2 * sum over every position and channel: doubling n_H and n_W gives 4 times as "
        "many terms, each of roughly the same size, so the sum grows about 4 times (VGG19 measures a little "
        "less, 2 to 4, because the terms shrink a bit: a unit's patch now covers half as much of the scene, "
        "where the image changes more gently). A sum, not a mean: the weight alpha has to follow the image's size.",
        rel_tol=0.25,  # "roughly": 3 to 5 is right; 1 (a mean), 2 (one side) and 16 are not
        hint="J_content is a sum, not a mean: count how the number of its terms changes when n_H and n_W both double.",
    ),
]
