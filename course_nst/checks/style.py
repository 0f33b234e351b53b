"""Checkers for notebook 03_style_cost: the Gram matrix, one layer's style cost, the weighted sum over layers.

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
    RTOL,
    SHAPES,
    Case,
    Factor,
    Wrong,
    as_float64,
    close,
    cost_cases,
    dedupe,
    detach64,
    dims_of,
    explain,
    fmt,
    gradient_problems,
    mutation_problem,
    norm_const,
    ref_gram,
    ref_layer_style,
    ref_style,
    scalar_type_problem,
    seeded_tensor,
    shape_label,
    unroll,
)

__all__ = [
    "EXERCISES",
    "check_gram_matrix",
    "check_layer_style_cost",
    "check_style_cost",
]


def _gram_channels_last(a: Tensor) -> Tensor:
    """Wrong: reshape a channels-last view straight to [n_C, n_H*n_W]."""
    A = a.permute(0, 2, 3, 1).reshape(a.shape[1], -1)
    return A @ A.T


def _gram_positions_first(a: Tensor) -> Tensor:
    """Wrong: reshape the channels-first tensor straight to [n_H*n_W, n_C]."""
    A = a.reshape(a.shape[2] * a.shape[3], a.shape[1])
    return A.T @ A


_GRAM_FACTORS = [
    Factor(
        "1/(n_H*n_W), one over the number of positions",
        lambda d: 1.0 / d["P"],
        "you normalised the Gram matrix by n_H*n_W (or used a mean); in this course "
        "G_kk' = sum_i sum_j a_ijk a_ijk' is not normalised: the normalisation "
        "1/(2 n_H n_W n_C)^2 lives in layer_style_cost",
    ),
    Factor(
        "1/(n_H*n_W*n_C)",
        lambda d: 1.0 / d["N"],
        "you normalised the Gram matrix by n_C*n_H*n_W (like the PyTorch tutorial's "
        "G.div(a*b*c*d)); in this course G_kk' = sum_i sum_j a_ijk a_ijk' is not normalised: "
        "the normalisation 1/(2 n_H n_W n_C)^2 lives in layer_style_cost",
    ),
    Factor(
        "1/n_C",
        lambda d: 1.0 / d["n_C"],
        "you divided by n_C; in this course the Gram matrix is not normalised: G_kk' = sum_i sum_j a_ijk a_ijk'",
    ),
    Factor("2", lambda d: 2.0, "there is no factor 2 in G_kk' = sum_i sum_j a_ijk a_ijk'"),
    Factor("1/2", lambda d: 0.5, "there is no factor 1/2 in G_kk' = sum_i sum_j a_ijk a_ijk'"),
]


_UNROLL_FIX = (
    "Unroll so that row k of A holds channel k at every position, A of shape [n_C, n_H*n_W], "
    "then G = A A^T; or unroll to [n_H*n_W, n_C] with one channel per column, then G = A^T A"
)


# reshape reads a tensor's numbers in the logical (row-major) order of its indices, the last index
# fastest, whatever their layout in memory (.contiguous(memory_format=torch.channels_last) changes
# nothing); so what decides an unroll is the order of the dimensions of the tensor being reshaped.
_GRAM_WRONGS = [
    Wrong(
        "channels_last",
        "your unroll mixes channels and positions: a.permute(0, 2, 3, 1) has shape [1, n_H, n_W, n_C], "
        "with the channel as its last, fastest-running index, and reshape reads the numbers in the order "
        "of the indices (row-major), so reshaping it straight to [n_C, n_H*n_W] fills each row with "
        "values of all n_C channels in turn. " + _UNROLL_FIX,
    ),
    Wrong(
        "positions_first",
        "your unroll mixes channels and positions: reshape reads the numbers of the [1, n_C, n_H, n_W] "
        "tensor in the order of its indices (row-major: all of channel 0, then all of channel 1...), so "
        "reshaping it straight to [n_H*n_W, n_C] puts values of one channel across each row, not one "
        "channel per column. " + _UNROLL_FIX,
    ),
]


def _gram_wrongs(a: Tensor) -> dict[str, Tensor]:
    return {"channels_last": _gram_channels_last(a), "positions_first": _gram_positions_first(a)}


def diagnose_gram_matrix(fn: Callable[..., Any]) -> list[str]:
    name = "gram_matrix"
    problems: list[str] = []
    cases: list[Case] = []
    first_out: Any = None
    first_a: Tensor | None = None
    for i, shape in enumerate(SHAPES):
        a = seeded_tensor(shape, 300 + i).requires_grad_(i == 0)
        before = {"a": a.detach().clone()}
        out = fn(a)
        problems += mutation_problem(before, {"a": a}, name)
        n_C, n_H, n_W = shape[1:]
        if not isinstance(out, Tensor):
            return dedupe(problems + [scalar_type_problem(out, name, "the Gram matrix") or "not a tensor"])
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
            return dedupe(problems + [msg])
        if not torch.allclose(got, got.T, rtol=RTOL, atol=RTOL * float(got.abs().max()) + 1e-12):
            return dedupe(
                problems
                + [
                    f"your Gram matrix is not symmetric (for {shape_label(shape)}, G[0, 1] = "
                    f"{fmt(float(got[0, 1]))} but G[1, 0] = {fmt(float(got[1, 0]))}); "
                    "G_kk' = sum_i sum_j a_ijk a_ijk' = G_k'k. Multiply the same unrolled matrix by "
                    "its own transpose, G = A @ A.T (did you mix two different unrolls of a? "
                    "a.reshape(n_H*n_W, n_C) is not the transpose of a.reshape(n_C, n_H*n_W): use .T)"
                ]
            )
        if i == 0:
            first_out, first_a = out, a
        ad = a.detach().double()
        cases.append(Case(shape_label(shape), dims_of(shape), got, ref_gram(ad), _gram_wrongs(ad)))
    problems += explain(cases, name, _GRAM_FACTORS, _GRAM_WRONGS)
    if problems:
        return dedupe(problems)

    # hand-made: two channels on a 1x2 image, G = [[1+4, 3+8], [3+8, 9+16]]
    a = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])
    got = fn(a)
    want = ref_gram(a.double())
    if not isinstance(got, Tensor) or not close(got.detach().double(), want):
        return [
            f"wrong Gram matrix for channels [1, 2] and [3, 4]: expected {want.tolist()}, "
            f"got {got.tolist() if isinstance(got, Tensor) else got}"
        ]

    # gradient of sum(W * G) with respect to a is (W + W.T) A, reshaped like a
    W = seeded_tensor((1, 1, SHAPES[0][1], SHAPES[0][1]), 399)[0, 0].double()
    if first_a is None:  # SHAPES is empty: nothing was compared
        return dedupe(problems)
    A = unroll(first_a.detach().double())
    want_grad = ((W + W.T) @ A).reshape(first_a.shape)
    if isinstance(first_out, Tensor) and first_out.requires_grad:
        weighted = (first_out * W.to(first_out.dtype)).sum()
        problems += gradient_problems(weighted, [first_a], [want_grad], name, "a")
    else:
        problems += gradient_problems(first_out, [first_a], [want_grad], name, "a")
    return dedupe(problems)


_STYLE_FIX = "J_style[l] = 1/(2 n_H n_W n_C)^2 * ||G(S) - G(G)||_F^2"


_LAYER_FACTORS = [
    Factor(
        "(2 n_H n_W n_C)^2",
        lambda d: (2.0 * d["N"]) ** 2,
        f"did you forget to divide by (2 n_H n_W n_C)^2? {_STYLE_FIX}",
    ),
    Factor(
        "2 n_H n_W n_C",
        lambda d: 2.0 * d["N"],
        "you divided by 2 n_H n_W n_C but not by its square: the normaliser is (2 n_H n_W n_C)^2",
    ),
    Factor(
        "4",
        lambda d: 4.0,
        "did you divide by (n_H n_W n_C)^2 instead of (2 n_H n_W n_C)^2? The 2 is inside the "
        "square, so the normaliser is 4 (n_H n_W n_C)^2",
    ),
    Factor(
        "2",
        lambda d: 2.0,
        "did you divide by 2 (n_H n_W n_C)^2 instead of (2 n_H n_W n_C)^2? The 2 is inside the "
        "square, so the normaliser is 4 (n_H n_W n_C)^2",
    ),
    Factor(
        "1/n_C^2, one over the number of entries of a Gram matrix",
        lambda d: 1.0 / d["n_C"] ** 2,
        "did you use .mean() instead of .sum() over the entries of G(S) - G(G)? The Frobenius "
        "norm squared sums every entry",
    ),
    Factor(
        "(2 n_H n_W n_C)^2 / n_C^2",
        lambda d: (2.0 * d["N"]) ** 2 / d["n_C"] ** 2,
        "did you use .mean() over the entries of G(S) - G(G) (like F.mse_loss) instead of the sum "
        f"divided by (2 n_H n_W n_C)^2? {_STYLE_FIX}",
    ),
    Factor(
        "4/n_C^2",
        lambda d: 4.0 / d["n_C"] ** 2,
        "this is the PyTorch tutorial's style loss (F.mse_loss of Gram matrices divided by "
        f"n_C n_H n_W); this course uses the lecture's normalisation: {_STYLE_FIX}",
    ),
    Factor(
        "1/(n_H n_W)^2",
        lambda d: 1.0 / d["P"] ** 2,
        "are your Gram matrices divided by n_H*n_W? In this course the Gram matrix is not "
        "normalised; the only normaliser is 1/(2 n_H n_W n_C)^2 in the style cost",
    ),
    Factor(
        "1/(n_H n_W n_C)^2",
        lambda d: 1.0 / d["N"] ** 2,
        "are your Gram matrices divided by n_C*n_H*n_W (the PyTorch tutorial's normalisation)? "
        "In this course the Gram matrix is not normalised; the only normaliser is "
        "1/(2 n_H n_W n_C)^2 in the style cost",
    ),
    Factor("1/2", lambda d: 0.5, f"is there an extra 1/2 in your formula? {_STYLE_FIX}"),
]


_LAYER_WRONGS = [
    Wrong(
        "norm",
        f"you used the Frobenius norm ||G(S) - G(G)||_F instead of its square (torch.norm without **2?): {_STYLE_FIX}",
    ),
    Wrong(
        "channels_last",
        "your Gram matrices mix channels and positions (a channels-last view, "
        "a.permute(0, 2, 3, 1), reshaped straight to [n_C, n_H*n_W]). " + _UNROLL_FIX,
    ),
    Wrong(
        "positions_first",
        "your Gram matrices mix channels and positions (the [1, n_C, n_H, n_W] tensor reshaped "
        "straight to [n_H*n_W, n_C]). " + _UNROLL_FIX,
    ),
    Wrong(
        "activations",
        "you compared the activations a(S) and a(G) directly; the style cost compares their Gram "
        f"matrices: {_STYLE_FIX}",
    ),
]


def _layer_wrongs(a_S: Tensor, a_G: Tensor) -> dict[str, Tensor]:
    c = norm_const(a_G)
    return {
        "norm": ((ref_gram(a_S) - ref_gram(a_G)) ** 2).sum().sqrt() / c,
        "channels_last": ref_layer_style(a_S, a_G, _gram_channels_last),
        "positions_first": ref_layer_style(a_S, a_G, _gram_positions_first),
        "activations": ((a_S - a_G) ** 2).sum() / c,
    }


def diagnose_layer_style_cost(fn: Callable[..., Any]) -> list[str]:
    name = "layer_style_cost"

    def make(i: int, shape: tuple):
        a_S = seeded_tensor(shape, 400 + i)
        a_G = seeded_tensor(shape, 500 + i).requires_grad_(i == 0)
        return (a_S, a_G), {"a_S": a_S, "a_G": a_G}, [a_G]

    specs = [(shape_label(s), s, dims_of(s)) for s in SHAPES]
    problems, cases, out, (_, args, grad_inputs) = cost_cases(fn, name, make, ref_layer_style, _layer_wrongs, specs)
    if not cases:
        return problems
    problems += explain(cases, name, _LAYER_FACTORS, _LAYER_WRONGS)
    if problems:
        return dedupe(problems)

    # hand-made: the same activations have the same style
    a = seeded_tensor((1, 2, 2, 3), 450)
    got = as_float64(fn(a, a.clone()))
    if got is None or got.numel() != 1 or abs(float(got.reshape(()))) > 1e-6:
        return [f"the style cost of two identical activations should be 0, got {got}"]

    a_S, a_G = args
    want_grad = torch.autograd.functional.jacobian(lambda g: ref_layer_style(a_S.double(), g), a_G.detach().double())
    problems += gradient_problems(out, grad_inputs, [want_grad], name, "a_G")
    return dedupe(problems)


_STYLE_LAYERS = {"conv1": (1, 3, 4, 5), "conv2": (1, 4, 2, 3), "conv3": (1, 2, 3, 3), "conv4": (1, 2, 2, 2)}


_STYLE_WEIGHT_SETS = [
    {"conv1": 0.5, "conv2": 2.0, "conv3": 1.0},  # conv4 is in the activations but not in the weights
    {"conv3": 0.2, "conv1": 0.3, "conv2": 0.5},  # weights that sum to 1, in another order
    {"conv2": 3.0},  # a single layer
]


_STYLE_SUM = "J_style = sum over the layers l in weights of lambda[l] * J_style[l]"


_STYLE_WRONGS = [
    Wrong(
        "ignores_lambda",
        f"your style_cost ignores the weights lambda[l]: it adds the layer costs unweighted. {_STYLE_SUM}",
    ),
    Wrong(
        "mean_no_lambda",
        f"your style_cost averages the layer costs and ignores the weights lambda[l]. {_STYLE_SUM}",
    ),
    Wrong(
        "average",
        "your style_cost averages instead of summing: it divides the weighted sum by the number of "
        f"layers. {_STYLE_SUM}",
    ),
    Wrong(
        "normalised_weights",
        f"your style_cost divides by the sum of the weights lambda[l]; the weights are used as they are. {_STYLE_SUM}",
    ),
    Wrong(
        "all_layers",
        "your style_cost uses every layer of acts_G, also those that are not in weights; loop over "
        f"weights.items() instead. {_STYLE_SUM}",
    ),
    Wrong(
        "last_only",
        "your style_cost keeps only the last layer's term: in the loop, add to the total "
        f"(total = total + ...) instead of replacing it. {_STYLE_SUM}",
    ),
    Wrong(
        "first_only",
        f"your style_cost keeps only the first layer's term: is the `return` inside the loop? {_STYLE_SUM}",
    ),
    Wrong(
        "lambda_squared",
        f"your style_cost multiplies by lambda[l] twice (lambda[l]^2). {_STYLE_SUM}",
    ),
]


def _style_wrongs(acts_S, acts_G, weights) -> dict[str, Tensor]:
    J = {k: ref_layer_style(acts_S[k], acts_G[k]) for k in acts_G}
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
        acts_S = {k: seeded_tensor(s, 600 + 10 * i + j) for j, (k, s) in enumerate(_STYLE_LAYERS.items())}
        acts_G = {
            k: seeded_tensor(s, 700 + 10 * i + j).requires_grad_(i == 0)
            for j, (k, s) in enumerate(_STYLE_LAYERS.items())
        }
        watched = {
            **{f"acts_S[{k!r}]": v for k, v in acts_S.items()},
            **{f"acts_G[{k!r}]": v for k, v in acts_G.items()},
        }
        return (acts_S, acts_G, dict(weights)), watched, [acts_G[k] for k in weights]

    specs: list[tuple[str, Any, dict[str, float]]] = [(f"weights {w}", w, {}) for w in _STYLE_WEIGHT_SETS]
    problems, cases, out, (_, args, grad_inputs) = cost_cases(fn, name, make, ref_style, _style_wrongs, specs)
    if not cases:
        return problems
    problems += explain(cases, name, (), _STYLE_WRONGS)
    if problems:
        problems = [
            p
            if not p.startswith("your result is")
            else p + " (if your layer_style_cost passed its check, look at how the layers are combined)"
            for p in problems
        ]
        return dedupe(problems)

    acts_S, acts_G, weights = args
    aS = detach64(acts_S)
    want = []
    for k in weights:
        want.append(
            torch.autograd.functional.jacobian(
                lambda g, k=k: weights[k] * ref_layer_style(aS[k], g), acts_G[k].detach().double()
            )
        )
    problems += gradient_problems(out, grad_inputs, want, name, "acts_G")
    return dedupe(problems)


# --------------------------------------------------------------------------- the exercises

EXERCISES: list[Exercise] = [
    Exercise(
        grade_id="gram_matrix",
        function="gram_matrix",
        diagnose=diagnose_gram_matrix,
        notebook="03_style_cost",
        teaches="Style as how strongly channels fire together (the lecture's 'correlation', an uncentred "
        "second moment): G_kk' = sum_i sum_j a_ijk a_ijk', an [n_C, n_C] matrix of the unrolled activations.",
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
]

_BY_ID = {ex.grade_id: ex for ex in EXERCISES}

check_gram_matrix = _BY_ID["gram_matrix"].check
check_layer_style_cost = _BY_ID["layer_style_cost"].check
check_style_cost = _BY_ID["style_cost"].check


# --------------------------------------------------------------------------- prediction questions

PREDICTIONS: list[Prediction] = [
    Prediction(
        grade_id="predict_style_growth",
        variable="predict_style_growth",
        notebook="03_style_cost",
        question="S and G both become twice as wide and twice as tall with the same textures (each image "
        "tiled 2 x 2: four times as many positions, the same statistics). By what factor does one layer's "
        "J_style[l] change, roughly?",
        answer=1,
        why="Each Gram entry is a sum over the n_H n_W positions, so it grows 4 times and its squared "
        "difference 16 times; the normaliser 1/(2 n_H n_W n_C)^2 shrinks 16 times, so J_style[l] stays about "
        "the same. J_content, a plain sum over positions, grows 4 times: the balance alpha : beta depends on "
        "the image's size.",
        hint="Say how a Gram entry grows when there are 4 times as many positions, square that, and do the same "
        "for the normaliser 1/(2 n_H n_W n_C)^2.",
    ),
    Prediction(
        grade_id="predict_gram_entries",
        variable="predict_gram_entries",
        notebook="03_style_cost",
        question="relu3_1 has 256 channels. How many numbers does its Gram matrix hold for a 512x512 image?",
        answer=256 * 256,
        why="G is n_C x n_C = 256 x 256 = 65,536 numbers whatever the image's size: the Gram matrix sums the "
        "positions away, which is why the style cost does not care where things are.",
        hint="G_kk' has one entry for each pair of channels (k, k'); the positions are summed over.",
    ),
]
