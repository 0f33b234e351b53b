"""Checkers for notebook 04_neural_style_transfer: the full algorithm: the total cost, one optimisation step
and the total-variation smoothness term.

The shared diagnosis (factors, known slips, gradients) is in :mod:`.diagnosis`.
The public ``check_*`` functions print one line on success and the problems otherwise;
they never raise.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from ._common import Exercise
from .diagnosis import (
    Factor,
    Wrong,
    as_float64,
    close,
    cost_cases,
    dedupe,
    describe_type,
    explain,
    fmt,
    gradient_problems,
    seeded_tensor,
)

__all__ = [
    "EXERCISES",
    "check_total_cost",
    "check_optimization_step",
    "check_total_variation",
]


_TOTAL_CASES = [
    (2.5, 0.75, 3.0, 7.0),
    (1.5, 4.0, 0.5, 1000.0),
    (0.3, 2.0, 10.0, 40.0),
]


_TOTAL_WRONGS = [
    Wrong(
        "swapped",
        "you swapped alpha and beta: alpha weighs the content cost and beta the style cost, "
        "J = alpha * J_content + beta * J_style",
    ),
    Wrong(
        "defaults",
        "your total_cost ignores the alpha and beta it is given (it always uses 10 and 40?): use "
        "the arguments, J = alpha * J_content + beta * J_style",
    ),
    Wrong("no_alpha", "you forgot alpha: J = alpha * J_content + beta * J_style"),
    Wrong("no_beta", "you forgot beta: J = alpha * J_content + beta * J_style"),
    Wrong("no_weights", "you forgot alpha and beta: J = alpha * J_content + beta * J_style"),
    Wrong(
        "product",
        "you multiplied the two terms; the total cost adds them: J = alpha * J_content + beta * J_style",
    ),
    Wrong(
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

    specs: list[tuple[str, Any, dict[str, float]]] = [
        (f"J_content={jc}, J_style={js}, alpha={a}, beta={b}", (jc, js, a, b), {}) for jc, js, a, b in _TOTAL_CASES
    ]
    ref = lambda Jc, Js, a, b: a * Jc + b * Js  # noqa: E731
    problems, cases, out, (_, args, grad_inputs) = cost_cases(fn, name, make, ref, _total_wrongs, specs)
    if not cases:
        return problems
    problems += explain(cases, name, (), _TOTAL_WRONGS)
    if problems:
        return dedupe(problems)
    _, _, alpha, beta = args
    want = [torch.tensor(float(alpha), dtype=torch.float64), torch.tensor(float(beta), dtype=torch.float64)]
    problems += gradient_problems(out, grad_inputs, want, name, "J_content and J_style", "do")
    return dedupe(problems)


_LR = 0.05


class _CountingSGD(torch.optim.SGD):
    """Plain SGD that counts its calls, to say which call is missing."""

    def __init__(self, params, lr: float, events: list[str]):
        super().__init__(params, lr=lr)
        self.steps = 0
        self.events = events

    def step(self, closure=None):
        self.steps += 1
        self.events.append("step")
        return super().step(closure)

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.events.append("zero_grad")
        super().zero_grad(set_to_none=set_to_none)


class _Objective:
    """A tiny stand-in for the style-transfer objective: quadratics in G.

    ``terms["J"] = 1.0 * J_content + 2.0 * J_style``; the other keys differ from J, so
    using the wrong key is detected.
    """

    def __init__(self, shape: tuple):
        self.t_content = seeded_tensor(shape, 800)
        self.t_style = seeded_tensor(shape, 801)
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
    G = seeded_tensor(shape, 802).requires_grad_(True)
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
    if close(G1, G1_want, rtol=1e-4):
        pass
    elif close(G1, G0 + _LR * g0, rtol=1e-4):
        return [
            "G moved uphill (J increased): you stepped along +gradient. Minimise J itself: "
            "J.backward() then optimizer.step(), with no minus sign on J"
        ]
    elif close(G1, G0 - _LR * objective.grad64(G0, "J_content"), rtol=1e-4):
        return ["you back-propagated terms['J_content'] instead of the total cost terms['J']"]
    elif close(G1, G0 - _LR * objective.grad64(G0, "J_style"), rtol=1e-4):
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
        problems.append(f"optimization_step should return a Python float, but it returned {describe_type(out1)}")
    value = as_float64(out1)
    if value is not None and value.numel() == 1:
        v = float(value.reshape(()))
        if math.isclose(v, J0, rel_tol=1e-4):
            pass
        elif math.isclose(v, J1, rel_tol=1e-4):
            problems.append(
                f"you returned J after the step ({fmt(v)}); return the value of J computed before "
                f"optimizer.step() ({fmt(J0)}): it is the cost of the image you took the step from"
            )
        elif math.isclose(v, objective.value64(G0, "J_content"), rel_tol=1e-4):
            problems.append("you returned terms['J_content']; return the total cost terms['J']")
        elif math.isclose(v, objective.value64(G0, "J_style"), rel_tol=1e-4):
            problems.append("you returned terms['J_style']; return the total cost terms['J']")
        else:
            problems.append(f"you returned {fmt(v)}; expected J before the step, {fmt(J0)}")
    if problems:
        return dedupe(problems)

    # 3. a second call: the gradients of the first step must not be added in again
    g1 = objective.grad64(G1)
    G2_want = G1 - _LR * g1
    out2 = fn(G, objective, optimizer)
    G2 = G.detach().double().clone()
    if close(G2, G2_want, rtol=1e-4):
        pass
    elif close(G2, G1 - _LR * (g0 + g1), rtol=1e-4):
        return [
            "the gradients accumulate from one call to the next: the second step used the sum of "
            "the first and second gradients. Call optimizer.zero_grad() before J.backward() in "
            "every step (PyTorch adds new gradients to .grad)"
        ]
    else:
        return ["the second call to optimization_step did not take the expected step on J"]
    value2 = as_float64(out2)
    if (
        value2 is None
        or value2.numel() != 1
        or not math.isclose(float(value2.reshape(())), objective.value64(G1), rel_tol=1e-4)
    ):
        problems.append("the second call did not return J at the image it started from")
    if objective.value64(G2) >= objective.value64(G1):
        problems.append("J did not decrease over the step")
    return dedupe(problems)


# --------------------------------------------------------------------------- total variation

# Image shapes [1, 3, H, W] of the tests: H != W, so that a missing direction shows.
_TV_SHAPES = [(1, 3, 4, 5), (1, 3, 6, 3), (1, 1, 2, 7)]


def _tv_diffs(image: Tensor) -> tuple[Tensor, Tensor]:
    """The vertical (i+1 minus i) and horizontal (j+1 minus j) neighbour differences."""
    return image[:, :, 1:, :] - image[:, :, :-1, :], image[:, :, :, 1:] - image[:, :, :, :-1]


def ref_total_variation(image: Tensor) -> Tensor:
    """TV(G) = sum (G[c, i+1, j] - G[c, i, j])^2 + sum (G[c, i, j+1] - G[c, i, j])^2, in float64."""
    dh, dw = _tv_diffs(image)
    return (dh**2).sum() + (dw**2).sum()


_TV_WRONGS = [
    Wrong(
        "absolute",
        "you summed absolute differences |G[i+1, j] - G[i, j]|; this total variation squares each difference",
    ),
    Wrong(
        "only_vertical",
        "you only compared vertical neighbours (row i+1 with row i); add the horizontal differences "
        "(column j+1 with column j)",
    ),
    Wrong(
        "only_horizontal",
        "you only compared horizontal neighbours (column j+1 with column j); add the vertical differences "
        "(row i+1 with row i)",
    ),
    Wrong(
        "mean",
        "you took the mean of the squared differences in each direction; the total variation is their sum",
    ),
    Wrong(
        "mean_pixels",
        "you divided the sum by the number of values in the image; the total variation is the plain sum",
    ),
    Wrong(
        "norm",
        "you took the square root of the sum (a norm); the total variation is the sum of the squared "
        "differences itself",
    ),
    Wrong(
        "wraparound",
        "you also compared the last row with the first (or the last column with the first), as torch.roll "
        "does; only neighbours inside the image count: the differences have one row (or column) fewer "
        "than the image",
    ),
    Wrong(
        "channels_summed",
        "you summed over the colour channels before squaring; square each channel's difference, then sum",
    ),
    Wrong(
        "squared_sum",
        "you squared the sum of the differences; square each difference, then sum",
    ),
]


def _tv_wrongs(image: Tensor) -> dict[str, Tensor]:
    dh, dw = _tv_diffs(image)
    wh = torch.roll(image, -1, dims=2) - image
    ww = torch.roll(image, -1, dims=3) - image
    return {
        "absolute": dh.abs().sum() + dw.abs().sum(),
        "only_vertical": (dh**2).sum(),
        "only_horizontal": (dw**2).sum(),
        "mean": (dh**2).mean() + (dw**2).mean(),
        "mean_pixels": ref_total_variation(image) / image.numel(),
        "norm": ref_total_variation(image).sqrt(),
        "wraparound": (wh**2).sum() + (ww**2).sum(),
        "channels_summed": (dh.sum(1) ** 2).sum() + (dw.sum(1) ** 2).sum(),
        "squared_sum": dh.sum() ** 2 + dw.sum() ** 2,
    }


def diagnose_total_variation(fn: Callable[..., Any]) -> list[str]:
    name = "total_variation"

    def make(i: int, shape: tuple):
        image = seeded_tensor(shape, 810 + i).sigmoid()  # pixel values in (0, 1)
        if i == 0:
            image.requires_grad_(True)
        return (image,), {"image": image}, [image]

    specs: list[tuple[str, Any, dict[str, float]]] = [(f"an image of shape {list(s)}", s, {}) for s in _TV_SHAPES]
    problems, cases, out, (_, args, grad_inputs) = cost_cases(fn, name, make, ref_total_variation, _tv_wrongs, specs)
    if not cases:
        return problems
    factors = [
        Factor("2", lambda d: 2.0, "there is no 2 in front of the sum"),
        Factor("1/2", lambda d: 0.5, "there is no 1/2 in front of the sum"),
    ]
    problems += explain(cases, name, factors, _TV_WRONGS)
    if problems:
        return dedupe(problems)
    # a flat image has no variation at all; a single step edge costs its height squared, once per row
    flat = torch.full((1, 3, 4, 4), 0.3)
    edge = torch.zeros(1, 1, 3, 4)
    edge[..., 2:] = 1.0
    for image, label in ((flat, "a flat grey image"), (edge, "a black-and-white image with one vertical edge")):
        got = as_float64(fn(image.clone()))
        want = ref_total_variation(image.double())
        if got is None or got.numel() != 1 or not close(got.reshape(()), want):
            value = fmt(float(got.reshape(-1)[0])) if got is not None and got.numel() else describe_type(got)
            return [f"for {label} total_variation should be {fmt(float(want))}, got {value}"]
    (image,) = args
    g = image.detach().double().requires_grad_(True)
    (want_grad,) = torch.autograd.grad(ref_total_variation(g), [g])
    problems += gradient_problems(out, grad_inputs, [want_grad], name, "the image", "does")
    return dedupe(problems)


# --------------------------------------------------------------------------- the exercises

EXERCISES: list[Exercise] = [
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
    Exercise(
        grade_id="total_variation",
        function="total_variation",
        diagnose=diagnose_total_variation,
        notebook="04_neural_style_transfer",
        teaches="The total variation sums the squared differences between neighbouring pixels, down and "
        "across; a small multiple of it smooths away pixel speckle.",
        points=1,
    ),
]

_BY_ID = {ex.grade_id: ex for ex in EXERCISES}

check_total_cost = _BY_ID["total_cost"].check
check_optimization_step = _BY_ID["optimization_step"].check
check_total_variation = _BY_ID["total_variation"].check
