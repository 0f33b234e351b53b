"""The diagnosis machinery that the cost checkers of notebooks 02, 03 and 04 share.

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

This module holds the tools (:func:`explain` names a factor or a known slip,
:func:`cost_cases` runs a function on the test cases, :func:`gradient_problems`
checks what reaches the inputs) and the float64 references of the lecture's
formulas; each notebook's module (:mod:`.content`, :mod:`.style`, :mod:`.transfer`)
holds its own exercises, their usual slips and their checkers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "RTOL",
    "FACTOR_RTOL",
    "SHAPES",
    "seeded_tensor",
    "dims_of",
    "shape_label",
    "fmt",
    "describe_type",
    "as_float64",
    "scalar_type_problem",
    "scalar_shape_problem",
    "close",
    "Case",
    "Factor",
    "Wrong",
    "measured_ratio",
    "factor_text",
    "explain",
    "gradient_problems",
    "mutation_problem",
    "dedupe",
    "cost_cases",
    "detach64",
    "ref_content",
    "unroll",
    "ref_gram",
    "norm_const",
    "ref_layer_style",
    "ref_style",
]

# Relative tolerance for "the same number": float32 implementations are fine.
RTOL = 1e-4


# Relative tolerance for "the same factor" when naming a factor.
FACTOR_RTOL = 1e-3


# Shapes [1, n_C, n_H, n_W] of the random test activations. n_C, n_H*n_W and
# n_H*n_W*n_C differ between them, so that a factor can be named unambiguously.
SHAPES = [(1, 3, 4, 5), (1, 4, 2, 3), (1, 2, 3, 3)]


def seeded_tensor(shape: Sequence[int], seed: int) -> Tensor:
    """Seeded float32 activations (float32, as a network gives them)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float32)


def dims_of(shape: Sequence[int]) -> dict[str, int]:
    _, n_C, n_H, n_W = shape
    return {"n_C": n_C, "n_H": n_H, "n_W": n_W, "N": n_C * n_H * n_W, "P": n_H * n_W}


def shape_label(shape: Sequence[int]) -> str:
    return f"shape {list(shape)}"


def fmt(x: float) -> str:
    return f"{x:.6g}"


def describe_type(out: Any) -> str:
    if out is None:
        return "None (did you forget the `return`?)"
    return type(out).__name__


def as_float64(out: Any) -> Tensor | None:
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


def scalar_type_problem(out: Any, name: str, what: str = "the cost") -> str | None:
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
    return f"{name} should return a torch tensor, but it returned {describe_type(out)}"


def scalar_shape_problem(out: Tensor, name: str) -> str | None:
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


def close(got: Tensor, want: Tensor, rtol: float = RTOL) -> bool:
    if got.shape != want.shape:
        return False
    if not torch.isfinite(got).all():
        return False
    scale = float(want.abs().max()) if want.numel() else 0.0
    return torch.allclose(got, want, rtol=rtol, atol=rtol * scale + 1e-12)


@dataclass
class Case:
    """One comparison: the student's float64 result and the expected one."""

    label: str
    dims: Mapping[str, float]
    got: Tensor
    want: Tensor
    wrong: dict[str, Tensor]  # known wrong computations on the same inputs, by key


@dataclass
class Factor:
    """A known factor student/expected, a function of the shape, and what it suggests."""

    expr: str  # e.g. "(2 n_H n_W n_C)^2"
    value: Callable[[Mapping[str, float]], float]
    hint: str


@dataclass
class Wrong:
    """A known wrong computation and what it means."""

    key: str
    message: str


def measured_ratio(got: Tensor, want: Tensor) -> float | None:
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


def factor_text(c: float) -> str:
    if c > 1:
        return f"{fmt(c)} times too large"
    if 0 < c < 1:
        inv = 1 / c
        return f"{fmt(inv)} times too small" if inv >= 1.5 else f"{fmt(c)} times the expected value"
    return f"{fmt(c)} times the expected value"


def explain(
    cases: list[Case],
    name: str,
    factors: Sequence[Factor] = (),
    wrongs: Sequence[Wrong] = (),
) -> list[str]:
    """Compare every case; if some differ, say why as precisely as we can."""
    if all(close(c.got, c.want) for c in cases):
        return []
    if all(c.got.numel() > 0 and float(c.got.abs().max()) == 0.0 for c in cases):
        c0 = cases[0]
        return [
            f"{name} returns 0 on every test "
            f"(for {c0.label} the expected value is {fmt(float(c0.want.reshape(-1)[0]))})"
        ]
    # 1. a known wrong computation that matches on every case
    for w in wrongs:
        if all(w.key in c.wrong and close(c.got, c.wrong[w.key]) for c in cases):
            return [w.message]
    # 2. a factor: the result is proportional to the expected one on every case
    measured = [measured_ratio(c.got, c.want) for c in cases]
    ratios = [r for r in measured if r is not None]
    if len(ratios) == len(measured):
        for f in factors:
            if all(math.isclose(r, f.value(c.dims), rel_tol=FACTOR_RTOL) for r, c in zip(ratios, cases, strict=True)):
                c0, r0 = cases[0], ratios[0]
                if f.expr.replace("/", "").isdigit():  # a plain number: no need to spell it out
                    return [f"your result is {factor_text(r0)}: {f.hint}"]
                return [
                    f"your result is {factor_text(r0)}: off by a factor equal to {f.expr} "
                    f"(= {fmt(r0)} for {c0.label}): {f.hint}"
                ]
        if (
            all(r < 0 for r in ratios)
            and all(math.isclose(r, ratios[0], rel_tol=FACTOR_RTOL) for r in ratios)
            and math.isclose(ratios[0], -1.0, rel_tol=FACTOR_RTOL)
        ):
            return [f"your result has the wrong sign: {name} should be the expected value, not its negative"]
        if all(math.isclose(r, ratios[0], rel_tol=FACTOR_RTOL) for r in ratios):
            return [
                f"your result is {factor_text(ratios[0])} on every test (a constant factor "
                f"{fmt(ratios[0])}): check the constants in your formula against the lecture's"
            ]
        listing = ", ".join(f"{fmt(r)} for {c.label}" for r, c in zip(ratios, cases, strict=True))
        return [
            "your result is proportional to the expected one, but the factor changes with the "
            f"shape ({listing}): check the normalisation (which of n_H, n_W, n_C you divide by, "
            "and whether it is squared)"
        ]
    # 3. nothing recognised: show one wrong case
    for c in cases:
        if not close(c.got, c.want):
            if c.want.dim() == 0:
                return [
                    f"wrong value for {c.label}: expected {fmt(float(c.want))}, got "
                    f"{fmt(float(c.got)) if c.got.numel() == 1 else list(c.got.shape)}"
                ]
            return [
                f"wrong values for {c.label}: the largest difference from the expected result is "
                f"{fmt(float((c.got - c.want).abs().max()))} (largest expected entry "
                f"{fmt(float(c.want.abs().max()))})"
            ]
    return []  # pragma: no cover - unreachable


def gradient_problems(
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
        if g is None or not close(g.to(torch.float64), want, rtol=1e-3):
            return [
                f"the gradient of {name}'s result with respect to {what} is wrong: part of your "
                "computation is detached from the graph (.detach(), .data, .item() or numpy in the "
                "middle?)"
            ]
    return []


def mutation_problem(before: Mapping[str, Tensor], after: Mapping[str, Tensor], name: str) -> list[str]:
    for key, b in before.items():
        if not torch.equal(b, after[key].detach()):
            return [
                f"{name} changed its input {key} in place (an operation like -=, += or a "
                "method ending in _ ): compute on new tensors and leave the inputs as they are"
            ]
    return []


def dedupe(problems: list[str]) -> list[str]:
    seen: list[str] = []
    for p in problems:
        if p not in seen:
            seen.append(p)
    return seen


def cost_cases(
    fn: Callable[..., Any],
    name: str,
    make_inputs: Callable[[int, Any], tuple[tuple, dict[str, Tensor], list[Tensor]]],
    reference: Callable[..., Tensor],
    wrongs: Callable[..., dict[str, Tensor]] | None,
    labels: Sequence[tuple[str, Any, Mapping[str, float]]],
) -> tuple[list[str], list[Case], Any, Any]:
    """Run ``fn`` on each case and collect type/shape/mutation problems and value cases.

    ``make_inputs(i, spec)`` returns (args, named inputs to watch for mutation, grad inputs).
    Returns (problems, cases, first output, first grad inputs); ``cases`` is empty when a
    type/shape problem prevents comparing values.
    """
    problems: list[str] = []
    cases: list[Case] = []
    first: tuple[Any, Any, Any] = (None, None, None)
    for i, (label, spec, dims) in enumerate(labels):
        args, watched, grad_inputs = make_inputs(i, spec)
        before = {k: v.detach().clone() for k, v in watched.items()}
        out = fn(*args)
        problems += mutation_problem(before, watched, name)
        if i == 0:
            first = (out, args, grad_inputs)
            p = scalar_type_problem(out, name)
            if p:
                problems.append(p)
        got = as_float64(out)
        if got is None:
            return dedupe(problems), [], first[0], first
        p = scalar_shape_problem(got, name)
        if p:
            return dedupe(problems + [p]), [], first[0], first
        dargs = tuple(detach64(x) for x in args)
        cases.append(Case(label, dims, got.reshape(()), reference(*dargs), wrongs(*dargs) if wrongs else {}))
    return dedupe(problems), cases, first[0], first


def detach64(x: Any) -> Any:
    if isinstance(x, Tensor):
        return x.detach().double()
    if isinstance(x, Mapping):
        return {k: detach64(v) for k, v in x.items()}
    return x


def ref_content(a_C: Tensor, a_G: Tensor) -> Tensor:
    return 0.5 * ((a_C - a_G) ** 2).sum()


def unroll(a: Tensor) -> Tensor:
    """[1, n_C, n_H, n_W] -> [n_C, n_H*n_W]: row k is channel k at every position."""
    return a.reshape(a.shape[1], a.shape[2] * a.shape[3])


def ref_gram(a: Tensor) -> Tensor:
    A = unroll(a)
    return A @ A.T


def norm_const(a: Tensor) -> float:
    _, n_C, n_H, n_W = a.shape
    return (2.0 * n_H * n_W * n_C) ** 2


def ref_layer_style(a_S: Tensor, a_G: Tensor, gram: Callable[[Tensor], Tensor] = ref_gram) -> Tensor:
    return ((gram(a_S) - gram(a_G)) ** 2).sum() / norm_const(a_G)


def ref_style(acts_S, acts_G, weights, layer=ref_layer_style) -> Tensor:
    total = torch.zeros((), dtype=torch.float64)
    for name, lam in weights.items():
        total = total + lam * layer(acts_S[name], acts_G[name])
    return total
