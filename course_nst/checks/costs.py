"""Checkers for the cost-function exercises (notebooks 02, 03 and 04).

Each checker runs the student's function on small seeded random tensors and a
few hand-made ones, and compares the result with the lecture's formula computed
here, in float64 (never with numbers copied from somewhere). When the result is
wrong it tries to say *why*, in the student's words:

* the result is not a tensor, or has the wrong shape;
* the result is off by a constant factor (the ratio student/expected is measured
  on several shapes and matched against the usual slips: a forgotten 1/2, a mean
  instead of a sum, another course's normalisation, a normaliser not squared...);
* the result matches a known wrong computation (an unroll that mixes channels
  and positions, swapped alpha and beta, ignored lambda weights...);
* the result is detached from the graph, so no gradient reaches the pixels.

The public functions ``check_*`` print one line on success and the problems
otherwise; they never raise.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ._common import Exercise

__all__ = [
    "EXERCISES",
    "check_content_cost",
    "check_gram_matrix",
    "check_layer_style_cost",
    "check_style_cost",
    "check_total_cost",
    "check_optimization_step",
]

# Relative tolerance for "the same number": float32 implementations are fine.
RTOL = 1e-4
# Relative tolerance for "the same factor" when naming a factor.
FACTOR_RTOL = 1e-3

# Shapes [1, n_C, n_H, n_W] of the random test activations. n_C, n_H*n_W and
# n_H*n_W*n_C differ between them, so that a factor can be named unambiguously.
SHAPES = [(1, 3, 4, 5), (1, 4, 2, 3), (1, 2, 3, 3)]


# --------------------------------------------------------------------------- helpers


def _random(shape: Sequence[int], seed: int) -> Tensor:
    """Seeded float32 activations (float32, as a network gives them)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float32)


def _dims(shape: Sequence[int]) -> dict[str, int]:
    _, n_C, n_H, n_W = shape
    return {"n_C": n_C, "n_H": n_H, "n_W": n_W, "N": n_C * n_H * n_W, "P": n_H * n_W}


def _label(shape: Sequence[int]) -> str:
    return f"shape {list(shape)}"


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def _describe_type(out: Any) -> str:
    if out is None:
        return "None (did you forget the `return`?)"
    return type(out).__name__


def _as_float64(out: Any) -> Tensor | None:
    """The student's result as a float64 tensor, or None if it is not a number/array."""
    if isinstance(out, Tensor):
        return out.detach().to(torch.float64)
    if isinstance(out, bool):
        return None
    try:
        import numpy as np

        if isinstance(out, (int, float, np.number, np.ndarray)):
            return torch.as_tensor(np.asarray(out, dtype=np.float64))
    except (TypeError, ValueError):
        return None
    return None


def _scalar_type_problem(out: Any, name: str, what: str = "the cost") -> str | None:
    """A problem if ``out`` is not a tensor (a cost must stay in the graph)."""
    if isinstance(out, Tensor):
        return None
    if isinstance(out, (float, int)) and not isinstance(out, bool):
        return (
            f"{name} returns a Python {type(out).__name__}, not a torch tensor: do not call "
            f".item() or float() on {what}; keep it a tensor so that the cost can be "
            "back-propagated to the pixels of G"
        )
    if type(out).__module__.startswith("numpy"):
        return (
            f"{name} returns a numpy {type(out).__name__}, not a torch tensor: use torch "
            "operations (torch.sum, **2, ...) instead of numpy, so that gradients can flow"
        )
    return f"{name} should return a torch tensor, but it returned {_describe_type(out)}"


def _scalar_shape_problem(out: Tensor, name: str) -> str | None:
    if out.dim() == 0:
        return None
    if out.numel() == 1:
        return (
            f"{name} returns a tensor of shape {list(out.shape)}; a cost is a single number, "
            "a 0-dimensional tensor (shape []): do not keep dimensions (no keepdim=True, no "
            "reshape/unsqueeze of the result)"
        )
    return (
        f"{name} returns a tensor of shape {list(out.shape)}; a cost is a single number, "
        "a 0-dimensional tensor (shape []): did you forget to sum over every element?"
    )


def _close(got: Tensor, want: Tensor, rtol: float = RTOL) -> bool:
    if got.shape != want.shape:
        return False
    if not torch.isfinite(got).all():
        return False
    scale = float(want.abs().max()) if want.numel() else 0.0
    return torch.allclose(got, want, rtol=rtol, atol=rtol * scale + 1e-12)


@dataclass
class _Case:
    """One comparison: the student's float64 result and the expected one."""

    label: str
    dims: dict[str, float]
    got: Tensor
    want: Tensor
    wrong: dict[str, Tensor]  # known wrong computations on the same inputs, by key


@dataclass
class _Factor:
    """A known factor student/expected, a function of the shape, and what it suggests."""

    expr: str  # e.g. "(2 n_H n_W n_C)^2"
    value: Callable[[dict[str, float]], float]
    hint: str


@dataclass
class _Wrong:
    """A known wrong computation and what it means."""

    key: str
    message: str


def _ratio(got: Tensor, want: Tensor) -> float | None:
    """c such that got = c * want, or None if got is not proportional to want."""
    if got.shape != want.shape or not torch.isfinite(got).all():
        return None
    ww = float((want * want).sum())
    if ww == 0.0:
        return None
    c = float((got * want).sum()) / ww
    residual = float(((got - c * want) ** 2).sum()) ** 0.5
    if residual > FACTOR_RTOL * (abs(c) * ww**0.5) + 1e-12:
        return None
    return c


def _factor_text(c: float) -> str:
    if c > 1:
        return f"{_fmt(c)} times too large"
    if 0 < c < 1:
        inv = 1 / c
        return f"{_fmt(inv)} times too small" if inv >= 1.5 else f"{_fmt(c)} times the expected value"
    return f"{_fmt(c)} times the expected value"


def _explain(
    cases: list[_Case],
    name: str,
    factors: Sequence[_Factor] = (),
    wrongs: Sequence[_Wrong] = (),
) -> list[str]:
    """Compare every case; if some differ, say why as precisely as we can."""
    if all(_close(c.got, c.want) for c in cases):
        return []
    if all(c.got.numel() > 0 and float(c.got.abs().max()) == 0.0 for c in cases):
        c0 = cases[0]
        return [
            f"{name} returns 0 on every test "
            f"(for {c0.label} the expected value is {_fmt(float(c0.want.reshape(-1)[0]))})"
        ]
    # 1. a known wrong computation that matches on every case
    for w in wrongs:
        if all(w.key in c.wrong and _close(c.got, c.wrong[w.key]) for c in cases):
            return [w.message]
    # 2. a factor: the result is proportional to the expected one on every case
    ratios = [_ratio(c.got, c.want) for c in cases]
    if all(r is not None for r in ratios):
        for f in factors:
            if all(math.isclose(r, f.value(c.dims), rel_tol=FACTOR_RTOL) for r, c in zip(ratios, cases, strict=True)):
                c0, r0 = cases[0], ratios[0]
                if f.expr.replace("/", "").isdigit():  # a plain number: no need to spell it out
                    return [f"your result is {_factor_text(r0)}: {f.hint}"]
                return [
                    f"your result is {_factor_text(r0)}: off by a factor equal to {f.expr} "
                    f"(= {_fmt(r0)} for {c0.label}): {f.hint}"
                ]
        if (
            all(r < 0 for r in ratios)
            and all(math.isclose(r, ratios[0], rel_tol=FACTOR_RTOL) for r in ratios)
            and math.isclose(ratios[0], -1.0, rel_tol=FACTOR_RTOL)
        ):
            return [f"your result has the wrong sign: {name} should be the expected value, not its negative"]
        if all(math.isclose(r, ratios[0], rel_tol=FACTOR_RTOL) for r in ratios):
            return [
                f"your result is {_factor_text(ratios[0])} on every test (a constant factor "
                f"{_fmt(ratios[0])}): check the constants in your formula against the lecture's"
            ]
        listing = ", ".join(f"{_fmt(r)} for {c.label}" for r, c in zip(ratios, cases, strict=True))
        return [
            "your result is proportional to the expected one, but the factor changes with the "
            f"shape ({listing}): check the normalisation (which of n_H, n_W, n_C you divide by, "
            "and whether it is squared)"
        ]
    # 3. nothing recognised: show one wrong case
    for c in cases:
        if not _close(c.got, c.want):
            if c.want.dim() == 0:
                return [
                    f"wrong value for {c.label}: expected {_fmt(float(c.want))}, got "
                    f"{_fmt(float(c.got)) if c.got.numel() == 1 else list(c.got.shape)}"
                ]
            return [
                f"wrong values for {c.label}: the largest difference from the expected result is "
                f"{_fmt(float((c.got - c.want).abs().max()))} (largest expected entry "
                f"{_fmt(float(c.want.abs().max()))})"
            ]
    return []  # pragma: no cover - unreachable


def _gradient_problems(
    out: Any, inputs: Sequence[Tensor], expected: Sequence[Tensor], name: str, what: str, does: str = "does"
) -> list[str]:
    """Check that ``out`` (a tensor) is in the graph and back-propagates the right gradient."""
    if not isinstance(out, Tensor):
        return []  # already reported as a type problem
    if not out.requires_grad:
        return [
            f"{name}'s result does not require grad although {what} {does}: it is cut from the "
            "computation graph (.detach(), .item(), .numpy(), torch.tensor(...) or torch.no_grad() "
            "on the way?), so no gradient can flow back to the pixels of G"
        ]
    try:
        grads = torch.autograd.grad(out.sum(), list(inputs), allow_unused=True)
    except RuntimeError as e:
        return [f"back-propagating through {name}'s result failed: {e}"]
    for g, want in zip(grads, expected, strict=True):
        if g is None or not _close(g.to(torch.float64), want, rtol=1e-3):
            return [
                f"the gradient of {name}'s result with respect to {what} is wrong: part of your "
                "computation is detached from the graph (.detach(), .data, .item() or numpy in the "
                "middle?)"
            ]
    return []


def _mutation_problem(before: Mapping[str, Tensor], after: Mapping[str, Tensor], name: str) -> list[str]:
    for key, b in before.items():
        if not torch.equal(b, after[key].detach()):
            return [
                f"{name} changed its input {key} in place (an operation like -=, += or a "
                "method ending in _ ): compute on new tensors and leave the inputs as they are"
            ]
    return []


# --------------------------------------------------------------------------- references (float64)


def _ref_content(a_C: Tensor, a_G: Tensor) -> Tensor:
    return 0.5 * ((a_C - a_G) ** 2).sum()


def _unroll(a: Tensor) -> Tensor:
    """[1, n_C, n_H, n_W] -> [n_C, n_H*n_W]: row k is channel k at every position."""
    return a.reshape(a.shape[1], a.shape[2] * a.shape[3])


def _ref_gram(a: Tensor) -> Tensor:
    A = _unroll(a)
    return A @ A.T


def _gram_channels_last(a: Tensor) -> Tensor:
    """Wrong: reshape a channels-last view straight to [n_C, n_H*n_W]."""
    A = a.permute(0, 2, 3, 1).reshape(a.shape[1], -1)
    return A @ A.T


def _gram_positions_first(a: Tensor) -> Tensor:
    """Wrong: reshape the channels-first tensor straight to [n_H*n_W, n_C]."""
    A = a.reshape(a.shape[2] * a.shape[3], a.shape[1])
    return A.T @ A


def _norm_const(a: Tensor) -> float:
    _, n_C, n_H, n_W = a.shape
    return (2.0 * n_H * n_W * n_C) ** 2


def _ref_layer_style(a_S: Tensor, a_G: Tensor, gram: Callable[[Tensor], Tensor] = _ref_gram) -> Tensor:
    return ((gram(a_S) - gram(a_G)) ** 2).sum() / _norm_const(a_G)


def _ref_style(acts_S, acts_G, weights, layer=_ref_layer_style) -> Tensor:
    total = torch.zeros((), dtype=torch.float64)
    for name, lam in weights.items():
        total = total + lam * layer(acts_S[name], acts_G[name])
    return total


# --------------------------------------------------------------------------- content_cost

_CONTENT_FACTORS = [
    _Factor("2", lambda d: 2.0, "did you forget the 1/2 in J_content = 1/2 * sum (a_C - a_G)^2?"),
    _Factor(
        "1/(n_H*n_W*n_C), one over the number of elements",
        lambda d: 1.0 / d["N"],
        "did you use .mean() instead of .sum()? The lecture's content cost sums over every unit",
    ),
    _Factor(
        "2/(n_H*n_W*n_C)",
        lambda d: 2.0 / d["N"],
        "did you use .mean() instead of .sum(), and forget the 1/2? The lecture's content cost is "
        "1/2 * sum (a_C - a_G)^2",
    ),
    _Factor(
        "1/(2 n_H n_W n_C)",
        lambda d: 1.0 / (2 * d["N"]),
        "you divided by 4 n_H n_W n_C: 1/(4 n_H n_W n_C) is the Coursera assignment's content "
        "normalisation; this course uses the lecture's 1/2 (alpha absorbs the constant, but the "
        "formula here is J_content = 1/2 * sum (a_C - a_G)^2)",
    ),
    _Factor(
        "1/(n_H n_W n_C)^2",
        lambda d: 1.0 / d["N"] ** 2,
        "you divided by (n_H n_W n_C)^2 (a mean, divided again?); the lecture's content cost is "
        "1/2 * sum (a_C - a_G)^2 with no other normalisation",
    ),
    _Factor("1/2", lambda d: 0.5, "the constant in front is 1/2, applied once: did you halve twice?"),
]

_CONTENT_WRONGS = [
    _Wrong(
        "norm",
        "you used the norm ||a_C - a_G|| instead of its square ||a_C - a_G||^2 (torch.norm "
        "without **2, or a square root): J_content = 1/2 * sum (a_C - a_G)^2",
    ),
    _Wrong(
        "square_of_sum",
        "you squared the sum of the differences, (sum (a_C - a_G))^2, instead of summing the "
        "squares, sum (a_C - a_G)^2",
    ),
    _Wrong(
        "no_square",
        "you summed the differences without squaring them: J_content = 1/2 * sum (a_C - a_G)^2",
    ),
    _Wrong(
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
        a_C = _random(shape, 100 + i)
        a_G = _random(shape, 200 + i).requires_grad_(i == 0)
        return (a_C, a_G), {"a_C": a_C, "a_G": a_G}, [a_G]

    specs = [(_label(s), s, _dims(s)) for s in SHAPES]
    problems, cases, out, (_, args, grad_inputs) = _cost_cases(fn, name, make, _ref_content, _content_wrongs, specs)
    if not cases:
        return problems
    problems += _explain(cases, name, _CONTENT_FACTORS, _CONTENT_WRONGS)
    if problems:
        return _dedupe(problems)

    # hand-made cases: identical activations cost nothing; a small example by hand
    z = torch.zeros(1, 2, 2, 2)
    hand = [
        ("two identical activations", z + 0.3, z + 0.3),
        ("a_C all 0 and a_G all 1, shape [1, 2, 2, 2]", z, z + 1.0),
    ]
    for label, a_C, a_G in hand:
        got = _as_float64(fn(a_C, a_G))
        want = _ref_content(a_C.double(), a_G.double())
        if got is None or got.numel() != 1 or not _close(got.reshape(()), want):
            shown = "a non-number" if got is None else _fmt(float(got.reshape(-1)[0]))
            return [f"wrong value for {label}: expected {_fmt(float(want))}, got {shown}"]

    # gradients flow back to a_G: dJ/da_G = a_G - a_C
    a_C, a_G = args
    want_grad = (a_G.detach() - a_C).double()
    problems += _gradient_problems(out, grad_inputs, [want_grad], name, "a_G")
    return _dedupe(problems)


def _dedupe(problems: list[str]) -> list[str]:
    seen: list[str] = []
    for p in problems:
        if p not in seen:
            seen.append(p)
    return seen


# --------------------------------------------------------------------------- gram_matrix

_GRAM_FACTORS = [
    _Factor(
        "1/(n_H*n_W), one over the number of positions",
        lambda d: 1.0 / d["P"],
        "you normalised the Gram matrix by n_H*n_W (or used a mean); in this course "
        "G_kk' = sum_i sum_j a_ijk a_ijk' is not normalised: the normalisation "
        "1/(2 n_H n_W n_C)^2 lives in layer_style_cost",
    ),
    _Factor(
        "1/(n_H*n_W*n_C)",
        lambda d: 1.0 / d["N"],
        "you normalised the Gram matrix by n_C*n_H*n_W (like the PyTorch tutorial's "
        "G.div(a*b*c*d)); in this course G_kk' = sum_i sum_j a_ijk a_ijk' is not normalised: "
        "the normalisation 1/(2 n_H n_W n_C)^2 lives in layer_style_cost",
    ),
    _Factor(
        "1/n_C",
        lambda d: 1.0 / d["n_C"],
        "you divided by n_C; in this course the Gram matrix is not normalised: G_kk' = sum_i sum_j a_ijk a_ijk'",
    ),
    _Factor("2", lambda d: 2.0, "there is no factor 2 in G_kk' = sum_i sum_j a_ijk a_ijk'"),
    _Factor("1/2", lambda d: 0.5, "there is no factor 1/2 in G_kk' = sum_i sum_j a_ijk a_ijk'"),
]

_UNROLL_FIX = (
    "Unroll with a.reshape(n_C, n_H * n_W) on the [1, n_C, n_H, n_W] tensor (then G = A @ A.T), "
    "or with a.permute(0, 2, 3, 1).reshape(n_H * n_W, n_C) (then G = A.T @ A)"
)

_GRAM_WRONGS = [
    _Wrong(
        "channels_last",
        "your unroll mixes channels and positions: reshaping a channels-last view "
        "(a.permute(0, 2, 3, 1), shape [1, n_H, n_W, n_C]) straight to [n_C, n_H*n_W] puts values "
        "of different channels in one row, because reshape reads the numbers in memory order. " + _UNROLL_FIX,
    ),
    _Wrong(
        "positions_first",
        "your unroll mixes channels and positions: reshaping the [1, n_C, n_H, n_W] tensor straight "
        "to [n_H*n_W, n_C] puts values of different channels in one column, because in memory all "
        "of channel 0 comes first, then all of channel 1... " + _UNROLL_FIX,
    ),
]


def _gram_wrongs(a: Tensor) -> dict[str, Tensor]:
    return {"channels_last": _gram_channels_last(a), "positions_first": _gram_positions_first(a)}


def diagnose_gram_matrix(fn: Callable[..., Any]) -> list[str]:
    name = "gram_matrix"
    problems: list[str] = []
    cases: list[_Case] = []
    first_out, first_a = None, None
    for i, shape in enumerate(SHAPES):
        a = _random(shape, 300 + i).requires_grad_(i == 0)
        before = {"a": a.detach().clone()}
        out = fn(a)
        problems += _mutation_problem(before, {"a": a}, name)
        n_C, n_H, n_W = shape[1:]
        if not isinstance(out, Tensor):
            return _dedupe(problems + [_scalar_type_problem(out, name, "the Gram matrix")])
        got = out.detach().double()
        shape_ok = list(got.shape) == [n_C, n_C]
        if not shape_ok:
            if list(got.shape) == [n_H * n_W, n_H * n_W]:
                msg = (
                    f"your Gram matrix has shape {list(got.shape)} = [n_H*n_W, n_H*n_W] for an "
                    f"activation of shape {list(shape)}: it correlates positions, not channels. With "
                    "A of shape [n_C, n_H*n_W], G = A @ A.T (not A.T @ A); G must be [n_C, n_C]"
                )
            elif got.numel() == n_C * n_C and got.squeeze().shape == (n_C, n_C):
                msg = (
                    f"your Gram matrix has shape {list(got.shape)} for an activation of shape "
                    f"{list(shape)}; it must be [n_C, n_C] = [{n_C}, {n_C}], without the batch "
                    "dimension (unroll to [n_C, n_H*n_W] first)"
                )
            else:
                msg = (
                    f"your Gram matrix has shape {list(got.shape)} for an activation of shape "
                    f"{list(shape)}; it must be [n_C, n_C] = [{n_C}, {n_C}]"
                )
            return _dedupe(problems + [msg])
        if not torch.allclose(got, got.T, rtol=RTOL, atol=RTOL * float(got.abs().max()) + 1e-12):
            return _dedupe(
                problems
                + [
                    f"your Gram matrix is not symmetric (for {_label(shape)}, G[0, 1] = "
                    f"{_fmt(float(got[0, 1]))} but G[1, 0] = {_fmt(float(got[1, 0]))}); "
                    "G_kk' = sum_i sum_j a_ijk a_ijk' = G_k'k. Multiply the same unrolled matrix by "
                    "its own transpose, G = A @ A.T (did you mix two different unrolls of a? "
                    "a.reshape(n_H*n_W, n_C) is not the transpose of a.reshape(n_C, n_H*n_W): use .T)"
                ]
            )
        if i == 0:
            first_out, first_a = out, a
        ad = a.detach().double()
        cases.append(_Case(_label(shape), _dims(shape), got, _ref_gram(ad), _gram_wrongs(ad)))
    problems += _explain(cases, name, _GRAM_FACTORS, _GRAM_WRONGS)
    if problems:
        return _dedupe(problems)

    # hand-made: two channels on a 1x2 image, G = [[1+4, 3+8], [3+8, 9+16]]
    a = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])
    got = fn(a)
    want = _ref_gram(a.double())
    if not isinstance(got, Tensor) or not _close(got.detach().double(), want):
        return [
            f"wrong Gram matrix for channels [1, 2] and [3, 4]: expected {want.tolist()}, "
            f"got {got.tolist() if isinstance(got, Tensor) else got}"
        ]

    # gradient of sum(W * G) with respect to a is (W + W.T) A, reshaped like a
    W = _random((1, 1, SHAPES[0][1], SHAPES[0][1]), 399)[0, 0].double()
    A = _unroll(first_a.detach().double())
    want_grad = ((W + W.T) @ A).reshape(first_a.shape)
    if isinstance(first_out, Tensor) and first_out.requires_grad:
        weighted = (first_out * W.to(first_out.dtype)).sum()
        problems += _gradient_problems(weighted, [first_a], [want_grad], name, "a")
    else:
        problems += _gradient_problems(first_out, [first_a], [want_grad], name, "a")
    return _dedupe(problems)


# --------------------------------------------------------------------------- layer_style_cost

_STYLE_FIX = "J_style[l] = 1/(2 n_H n_W n_C)^2 * ||G(S) - G(G)||_F^2"

_LAYER_FACTORS = [
    _Factor(
        "(2 n_H n_W n_C)^2",
        lambda d: (2.0 * d["N"]) ** 2,
        f"did you forget to divide by (2 n_H n_W n_C)^2? {_STYLE_FIX}",
    ),
    _Factor(
        "2 n_H n_W n_C",
        lambda d: 2.0 * d["N"],
        "you divided by 2 n_H n_W n_C but not by its square: the normaliser is (2 n_H n_W n_C)^2",
    ),
    _Factor(
        "4",
        lambda d: 4.0,
        "did you divide by (n_H n_W n_C)^2 instead of (2 n_H n_W n_C)^2? The 2 is inside the "
        "square, so the normaliser is 4 (n_H n_W n_C)^2",
    ),
    _Factor(
        "2",
        lambda d: 2.0,
        "did you divide by 2 (n_H n_W n_C)^2 instead of (2 n_H n_W n_C)^2? The 2 is inside the "
        "square, so the normaliser is 4 (n_H n_W n_C)^2",
    ),
    _Factor(
        "1/n_C^2, one over the number of entries of a Gram matrix",
        lambda d: 1.0 / d["n_C"] ** 2,
        "did you use .mean() instead of .sum() over the entries of G(S) - G(G)? The Frobenius "
        "norm squared sums every entry",
    ),
    _Factor(
        "(2 n_H n_W n_C)^2 / n_C^2",
        lambda d: (2.0 * d["N"]) ** 2 / d["n_C"] ** 2,
        "did you use .mean() over the entries of G(S) - G(G) (like F.mse_loss) instead of the sum "
        f"divided by (2 n_H n_W n_C)^2? {_STYLE_FIX}",
    ),
    _Factor(
        "4/n_C^2",
        lambda d: 4.0 / d["n_C"] ** 2,
        "this is the PyTorch tutorial's style loss (F.mse_loss of Gram matrices divided by "
        f"n_C n_H n_W); this course uses the lecture's normalisation: {_STYLE_FIX}",
    ),
    _Factor(
        "1/(n_H n_W)^2",
        lambda d: 1.0 / d["P"] ** 2,
        "are your Gram matrices divided by n_H*n_W? In this course the Gram matrix is not "
        "normalised; the only normaliser is 1/(2 n_H n_W n_C)^2 in the style cost",
    ),
    _Factor(
        "1/(n_H n_W n_C)^2",
        lambda d: 1.0 / d["N"] ** 2,
        "are your Gram matrices divided by n_C*n_H*n_W (the PyTorch tutorial's normalisation)? "
        "In this course the Gram matrix is not normalised; the only normaliser is "
        "1/(2 n_H n_W n_C)^2 in the style cost",
    ),
    _Factor("1/2", lambda d: 0.5, f"is there an extra 1/2 in your formula? {_STYLE_FIX}"),
]

_LAYER_WRONGS = [
    _Wrong(
        "norm",
        f"you used the Frobenius norm ||G(S) - G(G)||_F instead of its square (torch.norm without **2?): {_STYLE_FIX}",
    ),
    _Wrong(
        "channels_last",
        "your Gram matrices mix channels and positions (a channels-last view, "
        "a.permute(0, 2, 3, 1), reshaped straight to [n_C, n_H*n_W]). " + _UNROLL_FIX,
    ),
    _Wrong(
        "positions_first",
        "your Gram matrices mix channels and positions (the [1, n_C, n_H, n_W] tensor reshaped "
        "straight to [n_H*n_W, n_C]). " + _UNROLL_FIX,
    ),
    _Wrong(
        "activations",
        "you compared the activations a(S) and a(G) directly; the style cost compares their Gram "
        f"matrices: {_STYLE_FIX}",
    ),
]


def _layer_wrongs(a_S: Tensor, a_G: Tensor) -> dict[str, Tensor]:
    c = _norm_const(a_G)
    return {
        "norm": ((_ref_gram(a_S) - _ref_gram(a_G)) ** 2).sum().sqrt() / c,
        "channels_last": _ref_layer_style(a_S, a_G, _gram_channels_last),
        "positions_first": _ref_layer_style(a_S, a_G, _gram_positions_first),
        "activations": ((a_S - a_G) ** 2).sum() / c,
    }


def _cost_cases(
    fn: Callable[..., Any],
    name: str,
    make_inputs: Callable[[int, tuple], tuple[tuple, dict[str, Tensor], list[Tensor]]],
    reference: Callable[..., Tensor],
    wrongs: Callable[..., dict[str, Tensor]] | None,
    labels: Sequence[tuple[str, tuple, dict]],
) -> tuple[list[str], list[_Case], Any, Any]:
    """Run ``fn`` on each case and collect type/shape/mutation problems and value cases.

    ``make_inputs(i, spec)`` returns (args, named inputs to watch for mutation, grad inputs).
    Returns (problems, cases, first output, first grad inputs); ``cases`` is empty when a
    type/shape problem prevents comparing values.
    """
    problems: list[str] = []
    cases: list[_Case] = []
    first = (None, None, None)
    for i, (label, spec, dims) in enumerate(labels):
        args, watched, grad_inputs = make_inputs(i, spec)
        before = {k: v.detach().clone() for k, v in watched.items()}
        out = fn(*args)
        problems += _mutation_problem(before, watched, name)
        if i == 0:
            first = (out, args, grad_inputs)
            p = _scalar_type_problem(out, name)
            if p:
                problems.append(p)
        got = _as_float64(out)
        if got is None:
            return _dedupe(problems), [], first[0], first
        p = _scalar_shape_problem(got, name)
        if p:
            return _dedupe(problems + [p]), [], first[0], first
        dargs = tuple(_detach64(x) for x in args)
        cases.append(_Case(label, dims, got.reshape(()), reference(*dargs), wrongs(*dargs) if wrongs else {}))
    return _dedupe(problems), cases, first[0], first


def _detach64(x: Any) -> Any:
    if isinstance(x, Tensor):
        return x.detach().double()
    if isinstance(x, Mapping):
        return {k: _detach64(v) for k, v in x.items()}
    return x


def diagnose_layer_style_cost(fn: Callable[..., Any]) -> list[str]:
    name = "layer_style_cost"

    def make(i: int, shape: tuple):
        a_S = _random(shape, 400 + i)
        a_G = _random(shape, 500 + i).requires_grad_(i == 0)
        return (a_S, a_G), {"a_S": a_S, "a_G": a_G}, [a_G]

    specs = [(_label(s), s, _dims(s)) for s in SHAPES]
    problems, cases, out, (_, args, grad_inputs) = _cost_cases(fn, name, make, _ref_layer_style, _layer_wrongs, specs)
    if not cases:
        return problems
    problems += _explain(cases, name, _LAYER_FACTORS, _LAYER_WRONGS)
    if problems:
        return _dedupe(problems)

    # hand-made: the same activations have the same style
    a = _random((1, 2, 2, 3), 450)
    got = _as_float64(fn(a, a.clone()))
    if got is None or got.numel() != 1 or abs(float(got.reshape(()))) > 1e-6:
        return [f"the style cost of two identical activations should be 0, got {got}"]

    a_S, a_G = args
    want_grad = torch.autograd.functional.jacobian(lambda g: _ref_layer_style(a_S.double(), g), a_G.detach().double())
    problems += _gradient_problems(out, grad_inputs, [want_grad], name, "a_G")
    return _dedupe(problems)


# --------------------------------------------------------------------------- style_cost

_STYLE_LAYERS = {"conv1": (1, 3, 4, 5), "conv2": (1, 4, 2, 3), "conv3": (1, 2, 3, 3), "conv4": (1, 2, 2, 2)}
_STYLE_WEIGHT_SETS = [
    {"conv1": 0.5, "conv2": 2.0, "conv3": 1.0},  # conv4 is in the activations but not in the weights
    {"conv3": 0.2, "conv1": 0.3, "conv2": 0.5},  # weights that sum to 1, in another order
    {"conv2": 3.0},  # a single layer
]

_STYLE_SUM = "J_style = sum over the layers l in weights of lambda[l] * J_style[l]"

_STYLE_WRONGS = [
    _Wrong(
        "ignores_lambda",
        f"your style_cost ignores the weights lambda[l]: it adds the layer costs unweighted. {_STYLE_SUM}",
    ),
    _Wrong(
        "mean_no_lambda",
        f"your style_cost averages the layer costs and ignores the weights lambda[l]. {_STYLE_SUM}",
    ),
    _Wrong(
        "average",
        "your style_cost averages instead of summing: it divides the weighted sum by the number of "
        f"layers. {_STYLE_SUM}",
    ),
    _Wrong(
        "normalised_weights",
        f"your style_cost divides by the sum of the weights lambda[l]; the weights are used as they are. {_STYLE_SUM}",
    ),
    _Wrong(
        "all_layers",
        "your style_cost uses every layer of acts_G, also those that are not in weights; loop over "
        f"weights.items() instead. {_STYLE_SUM}",
    ),
    _Wrong(
        "last_only",
        "your style_cost keeps only the last layer's term: in the loop, add to the total "
        f"(total = total + ...) instead of replacing it. {_STYLE_SUM}",
    ),
    _Wrong(
        "first_only",
        f"your style_cost keeps only the first layer's term: is the `return` inside the loop? {_STYLE_SUM}",
    ),
    _Wrong(
        "lambda_squared",
        f"your style_cost multiplies by lambda[l] twice (lambda[l]^2). {_STYLE_SUM}",
    ),
]


def _style_wrongs(acts_S, acts_G, weights) -> dict[str, Tensor]:
    J = {k: _ref_layer_style(acts_S[k], acts_G[k]) for k in acts_G}
    L = len(weights)
    names = list(weights)
    weighted = sum(weights[k] * J[k] for k in names)
    return {
        "ignores_lambda": sum(J[k] for k in names),
        "mean_no_lambda": sum(J[k] for k in names) / L,
        "average": weighted / L,
        "normalised_weights": weighted / sum(weights.values()),
        "all_layers": sum(weights.get(k, 1.0) * J[k] for k in acts_G),
        "last_only": weights[names[-1]] * J[names[-1]],
        "first_only": weights[names[0]] * J[names[0]],
        "lambda_squared": sum(weights[k] ** 2 * J[k] for k in names),
    }


def diagnose_style_cost(fn: Callable[..., Any]) -> list[str]:
    name = "style_cost"

    def make(i: int, weights: dict):
        acts_S = {k: _random(s, 600 + 10 * i + j) for j, (k, s) in enumerate(_STYLE_LAYERS.items())}
        acts_G = {
            k: _random(s, 700 + 10 * i + j).requires_grad_(i == 0) for j, (k, s) in enumerate(_STYLE_LAYERS.items())
        }
        watched = {
            **{f"acts_S[{k!r}]": v for k, v in acts_S.items()},
            **{f"acts_G[{k!r}]": v for k, v in acts_G.items()},
        }
        return (acts_S, acts_G, dict(weights)), watched, [acts_G[k] for k in weights]

    specs = [(f"weights {w}", w, {}) for w in _STYLE_WEIGHT_SETS]
    problems, cases, out, (_, args, grad_inputs) = _cost_cases(fn, name, make, _ref_style, _style_wrongs, specs)
    if not cases:
        return problems
    problems += _explain(cases, name, (), _STYLE_WRONGS)
    if problems:
        problems = [
            p
            if not p.startswith("your result is")
            else p + " (if your layer_style_cost passed its check, look at how the layers are combined)"
            for p in problems
        ]
        return _dedupe(problems)

    acts_S, acts_G, weights = args
    aS = _detach64(acts_S)
    want = []
    for k in weights:
        want.append(
            torch.autograd.functional.jacobian(
                lambda g, k=k: weights[k] * _ref_layer_style(aS[k], g), acts_G[k].detach().double()
            )
        )
    problems += _gradient_problems(out, grad_inputs, want, name, "acts_G")
    return _dedupe(problems)


# --------------------------------------------------------------------------- total_cost

_TOTAL_CASES = [
    (2.5, 0.75, 3.0, 7.0),
    (1.5, 4.0, 0.5, 1000.0),
    (0.3, 2.0, 10.0, 40.0),
]

_TOTAL_WRONGS = [
    _Wrong(
        "swapped",
        "you swapped alpha and beta: alpha weighs the content cost and beta the style cost, "
        "J = alpha * J_content + beta * J_style",
    ),
    _Wrong(
        "defaults",
        "your total_cost ignores the alpha and beta it is given (it always uses 10 and 40?): use "
        "the arguments, J = alpha * J_content + beta * J_style",
    ),
    _Wrong("no_alpha", "you forgot alpha: J = alpha * J_content + beta * J_style"),
    _Wrong("no_beta", "you forgot beta: J = alpha * J_content + beta * J_style"),
    _Wrong("no_weights", "you forgot alpha and beta: J = alpha * J_content + beta * J_style"),
    _Wrong(
        "product",
        "you multiplied the two terms; the total cost adds them: J = alpha * J_content + beta * J_style",
    ),
    _Wrong(
        "normalised",
        "you divided by alpha + beta; the total cost is simply J = alpha * J_content + beta * J_style",
    ),
]


def _total_wrongs(Jc, Js, alpha, beta) -> dict[str, Tensor]:
    return {
        "swapped": beta * Jc + alpha * Js,
        "defaults": 10.0 * Jc + 40.0 * Js,
        "no_alpha": Jc + beta * Js,
        "no_beta": alpha * Jc + Js,
        "no_weights": Jc + Js,
        "product": alpha * Jc * beta * Js,
        "normalised": (alpha * Jc + beta * Js) / (alpha + beta),
    }


def diagnose_total_cost(fn: Callable[..., Any]) -> list[str]:
    name = "total_cost"

    def make(i: int, spec: tuple):
        jc, js, alpha, beta = spec
        Jc = torch.tensor(jc, requires_grad=(i == 0))
        Js = torch.tensor(js, requires_grad=(i == 0))
        return (Jc, Js, alpha, beta), {}, [Jc, Js]

    specs = [
        (f"J_content={jc}, J_style={js}, alpha={a}, beta={b}", (jc, js, a, b), {}) for jc, js, a, b in _TOTAL_CASES
    ]
    ref = lambda Jc, Js, a, b: a * Jc + b * Js  # noqa: E731
    problems, cases, out, (_, args, grad_inputs) = _cost_cases(fn, name, make, ref, _total_wrongs, specs)
    if not cases:
        return problems
    problems += _explain(cases, name, (), _TOTAL_WRONGS)
    if problems:
        return _dedupe(problems)
    _, _, alpha, beta = args
    want = [torch.tensor(float(alpha), dtype=torch.float64), torch.tensor(float(beta), dtype=torch.float64)]
    problems += _gradient_problems(out, grad_inputs, want, name, "J_content and J_style", "do")
    return _dedupe(problems)


# --------------------------------------------------------------------------- optimization_step

_LR = 0.05


class _CountingSGD(torch.optim.SGD):
    """Plain SGD that counts its calls, to say which call is missing."""

    def __init__(self, params, lr: float, events: list[str]):
        super().__init__(params, lr=lr)
        self.steps = 0
        self.events = events

    def step(self, closure=None):  # type: ignore[override]
        self.steps += 1
        self.events.append("step")
        return super().step(closure)

    def zero_grad(self, set_to_none: bool = True) -> None:  # type: ignore[override]
        self.events.append("zero_grad")
        super().zero_grad(set_to_none=set_to_none)


class _Objective:
    """A tiny stand-in for the style-transfer objective: quadratics in G.

    ``terms["J"] = 1.0 * J_content + 2.0 * J_style``; the other keys differ from J, so
    using the wrong key is detected.
    """

    def __init__(self, shape: tuple):
        self.t_content = _random(shape, 800)
        self.t_style = _random(shape, 801)
        self.calls = 0

    def terms64(self, G: Tensor) -> dict[str, Tensor]:
        Jc = ((G - self.t_content.double()) ** 2).sum()
        Js = 0.5 * ((G - self.t_style.double()) ** 2).sum()
        return {"J": 1.0 * Jc + 2.0 * Js, "J_content": Jc, "J_style": Js, "J_tv": torch.zeros((), dtype=G.dtype)}

    def __call__(self, G: Tensor) -> dict[str, Tensor]:
        self.calls += 1
        Jc = ((G - self.t_content) ** 2).sum()
        Js = 0.5 * ((G - self.t_style) ** 2).sum()
        return {"J": 1.0 * Jc + 2.0 * Js, "J_content": Jc, "J_style": Js, "J_tv": torch.zeros(())}

    def grad64(self, G: Tensor, key: str = "J") -> Tensor:
        g = G.detach().double().requires_grad_(True)
        (grad,) = torch.autograd.grad(self.terms64(g)[key], [g])
        return grad

    def value64(self, G: Tensor, key: str = "J") -> float:
        return float(self.terms64(G.detach().double())[key])


def diagnose_optimization_step(fn: Callable[..., Any]) -> list[str]:
    shape = (1, 3, 2, 2)
    objective = _Objective(shape)
    G = _random(shape, 802).requires_grad_(True)
    events: list[str] = []  # the order of the student's calls: objective, backward, zero_grad, step
    G.register_hook(lambda grad: events.append("backward"))
    optimizer = _CountingSGD([G], lr=_LR, events=events)
    G0 = G.detach().double().clone()
    J0 = objective.value64(G0)
    g0 = objective.grad64(G0)
    G1_want = G0 - _LR * g0
    J1 = objective.value64(G1_want)

    out1 = fn(G, objective, optimizer)
    G1 = G.detach().double().clone()
    problems: list[str] = []

    if objective.calls == 0:
        return ["your function never calls objective(G): compute terms = objective(G) and take J = terms['J']"]
    if not G.requires_grad:
        return ["G no longer requires grad after your step: do not detach G or set requires_grad=False"]

    # 1. the pixels moved, downhill, by one optimizer step on J
    if torch.equal(G1, G0):
        if optimizer.steps == 0:
            problems.append("G did not change: did you call optimizer.step()?")
        elif "backward" not in events[: events.index("step")]:
            problems.append(
                "G did not change: no gradient reached G when optimizer.step() ran. Call "
                "J.backward() before optimizer.step()"
            )
        elif "zero_grad" in events[events.index("backward") : events.index("step")]:
            problems.append(
                "G did not change: the gradients were erased when optimizer.step() ran, because "
                "optimizer.zero_grad() came after J.backward(). The order is zero_grad(), "
                "backward(), step()"
            )
        else:
            problems.append("G did not change, although optimizer.step() was called")
        return problems
    if _close(G1, G1_want, rtol=1e-4):
        pass
    elif _close(G1, G0 + _LR * g0, rtol=1e-4):
        return [
            "G moved uphill (J increased): you stepped along +gradient. Minimise J itself: "
            "J.backward() then optimizer.step(), with no minus sign on J"
        ]
    elif _close(G1, G0 - _LR * objective.grad64(G0, "J_content"), rtol=1e-4):
        return ["you back-propagated terms['J_content'] instead of the total cost terms['J']"]
    elif _close(G1, G0 - _LR * objective.grad64(G0, "J_style"), rtol=1e-4):
        return ["you back-propagated terms['J_style'] instead of the total cost terms['J']"]
    elif optimizer.steps == 0:
        return [
            "G changed, but optimizer.step() was never called: let the optimizer update the pixels "
            "(J.backward(); optimizer.step()) instead of changing G by hand"
        ]
    elif optimizer.steps > 1:
        return [f"optimizer.step() was called {optimizer.steps} times; one optimization step calls it once"]
    else:
        return [
            "G did not move by one optimizer step on J: the expected update is "
            "optimizer.zero_grad(); J.backward(); optimizer.step()"
        ]

    # 2. the return value: J before the step, as a Python float
    if isinstance(out1, Tensor):
        problems.append(
            "optimization_step returns a tensor; return J as a Python float (J.item()), so that "
            "the cost history does not keep the whole computation graph alive"
        )
    elif out1 is None:
        problems.append("optimization_step returns None: return the value of J as a Python float (J.item())")
    elif not isinstance(out1, (float, int)) or isinstance(out1, bool):
        problems.append(f"optimization_step should return a Python float, but it returned {_describe_type(out1)}")
    value = _as_float64(out1)
    if value is not None and value.numel() == 1:
        v = float(value.reshape(()))
        if math.isclose(v, J0, rel_tol=1e-4):
            pass
        elif math.isclose(v, J1, rel_tol=1e-4):
            problems.append(
                f"you returned J after the step ({_fmt(v)}); return the value of J computed before "
                f"optimizer.step() ({_fmt(J0)}): it is the cost of the image you took the step from"
            )
        elif math.isclose(v, objective.value64(G0, "J_content"), rel_tol=1e-4):
            problems.append("you returned terms['J_content']; return the total cost terms['J']")
        elif math.isclose(v, objective.value64(G0, "J_style"), rel_tol=1e-4):
            problems.append("you returned terms['J_style']; return the total cost terms['J']")
        else:
            problems.append(f"you returned {_fmt(v)}; expected J before the step, {_fmt(J0)}")
    if problems:
        return _dedupe(problems)

    # 3. a second call: the gradients of the first step must not be added in again
    g1 = objective.grad64(G1)
    G2_want = G1 - _LR * g1
    out2 = fn(G, objective, optimizer)
    G2 = G.detach().double().clone()
    if _close(G2, G2_want, rtol=1e-4):
        pass
    elif _close(G2, G1 - _LR * (g0 + g1), rtol=1e-4):
        return [
            "the gradients accumulate from one call to the next: the second step used the sum of "
            "the first and second gradients. Call optimizer.zero_grad() before J.backward() in "
            "every step (PyTorch adds new gradients to .grad)"
        ]
    else:
        return ["the second call to optimization_step did not take the expected step on J"]
    value2 = _as_float64(out2)
    if (
        value2 is None
        or value2.numel() != 1
        or not math.isclose(float(value2.reshape(())), objective.value64(G1), rel_tol=1e-4)
    ):
        problems.append("the second call did not return J at the image it started from")
    if objective.value64(G2) >= objective.value64(G1):
        problems.append("J did not decrease over the step")
    return _dedupe(problems)


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
    Exercise(
        grade_id="gram_matrix",
        function="gram_matrix",
        diagnose=diagnose_gram_matrix,
        notebook="03_style_cost",
        teaches="Style is the correlation between channels: G_kk' = sum_i sum_j a_ijk a_ijk', "
        "an [n_C, n_C] matrix computed from the unrolled activations.",
        points=1,
    ),
    Exercise(
        grade_id="layer_style_cost",
        function="layer_style_cost",
        diagnose=diagnose_layer_style_cost,
        notebook="03_style_cost",
        teaches="One layer's style cost compares Gram matrices: "
        "J_style[l] = 1/(2 n_H n_W n_C)^2 * ||G(S) - G(G)||_F^2.",
        points=1,
    ),
    Exercise(
        grade_id="style_cost",
        function="style_cost",
        diagnose=diagnose_style_cost,
        notebook="03_style_cost",
        teaches="The style cost combines several layers with weights: J_style = sum_l lambda[l] * J_style[l].",
        points=1,
    ),
    Exercise(
        grade_id="total_cost",
        function="total_cost",
        diagnose=diagnose_total_cost,
        notebook="04_neural_style_transfer",
        teaches="The total cost trades content against style: J = alpha * J_content + beta * J_style.",
        points=1,
    ),
    Exercise(
        grade_id="optimization_step",
        function="optimization_step",
        diagnose=diagnose_optimization_step,
        notebook="04_neural_style_transfer",
        teaches="Neural style transfer optimises the pixels of G: compute J, zero the gradients, "
        "back-propagate to the pixels and take one optimizer step.",
        points=1,
    ),
]

_BY_ID = {ex.grade_id: ex for ex in EXERCISES}

check_content_cost = _BY_ID["content_cost"].check
check_gram_matrix = _BY_ID["gram_matrix"].check
check_layer_style_cost = _BY_ID["layer_style_cost"].check
check_style_cost = _BY_ID["style_cost"].check
check_total_cost = _BY_ID["total_cost"].check
check_optimization_step = _BY_ID["optimization_step"].check
