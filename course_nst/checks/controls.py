"""Checkers for the exercises of notebook 05 (controlling the result).

* ``match_colour_histogram(source, target)``: the style's colours get the content's mean
  and covariance, p' = A (p - mu_S) + mu_C.
* ``guided_gram_matrix(a, mask)``: G_kk' = sum_ij (m_ij)^2 a_ijk a_ijk' with the mask
  downsampled to the layer's size by area averaging.

As the cost checkers do, they run the student's function on small seeded tensors, compare
with the formula computed here in float64, and when the result is wrong compare it with the
usual slips (only the mean matched, per-channel standard deviations, the square roots in the
wrong order, a covariance of the wrong orientation; the mask not squared, not downsampled,
or downsampled by picking pixels) to say what went wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ._common import Exercise

__all__ = ["EXERCISES", "check_match_colour_histogram", "check_guided_gram_matrix"]

RTOL = 1e-4


def _seeded(shape: tuple[int, ...], seed: int) -> Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float32)


def _close(got: Tensor, want: Tensor, rtol: float = RTOL) -> bool:
    if got.shape != want.shape or not torch.isfinite(got).all():
        return False
    scale = float(want.abs().max()) if want.numel() else 0.0
    return torch.allclose(got, want, rtol=rtol, atol=rtol * scale + 1e-10)


def _type_problem(out: Any, name: str, shape: tuple[int, ...], what: str) -> str | None:
    if out is None:
        return f"{name} returned None: did you forget the `return`?"
    if not isinstance(out, Tensor):
        return f"{name} should return a torch tensor ({what}), but it returned {type(out).__name__}"
    if tuple(out.shape) != shape:
        return f"{name} returned a tensor of shape {list(out.shape)}; expected {what}, shape {list(shape)}"
    return None


def _mutated(before: dict[str, Tensor], after: dict[str, Tensor], name: str) -> str | None:
    for key, b in before.items():
        if not torch.equal(b, after[key].detach()):
            return (
                f"{name} changed its input {key} in place (an operation like *=, -= or a method ending "
                "in _ ): compute on new tensors and leave the inputs as they are"
            )
    return None


# --------------------------------------------------------------------------- match_colour_histogram


def _mean_cov(image: Tensor) -> tuple[Tensor, Tensor]:
    X = image.reshape(3, -1)
    mu = X.mean(dim=1)
    D = X - mu[:, None]
    return mu, D @ D.T / D.shape[1]


def _power(sigma: Tensor, p: float) -> Tensor:
    e, V = torch.linalg.eigh(sigma)
    return V @ torch.diag(e.clamp_min(1e-12) ** p) @ V.T


def _recolour(source: Tensor, A: Tensor, mu_from: Tensor, mu_to: Tensor) -> Tensor:
    X = source.reshape(3, -1)
    return (A @ (X - mu_from[:, None]) + mu_to[:, None]).reshape(source.shape)


def _histogram_reference(source: Tensor, target: Tensor) -> Tensor:
    mu_S, cov_S = _mean_cov(source)
    mu_C, cov_C = _mean_cov(target)
    return _recolour(source, _power(cov_C, 0.5) @ _power(cov_S, -0.5), mu_S, mu_C)


def _histogram_wrongs(source: Tensor, target: Tensor) -> dict[str, Tensor]:
    mu_S, cov_S = _mean_cov(source)
    mu_C, cov_C = _mean_cov(target)
    sd_S, sd_C = cov_S.diagonal().sqrt(), cov_C.diagonal().sqrt()
    ref = _histogram_reference(source, target)
    # a covariance of the wrong orientation: the [1, 3, H, W] tensor reshaped straight to [N, 3]
    Xw_S, Xw_C = source.reshape(-1, 3), target.reshape(-1, 3)
    cw_S, cw_C = torch.cov(Xw_S.T, correction=0), torch.cov(Xw_C.T, correction=0)
    return {
        "unchanged": source.clone(),
        "mean_only": source - mu_S[:, None, None] + mu_C[:, None, None],
        "std_per_channel": ((source - mu_S[:, None, None]) / sd_S[:, None, None]) * sd_C[:, None, None]
        + mu_C[:, None, None],
        "order": _recolour(source, _power(cov_S, -0.5) @ _power(cov_C, 0.5), mu_S, mu_C),
        "no_inverse": _recolour(source, _power(cov_C, 0.5) @ _power(cov_S, 0.5), mu_S, mu_C),
        "no_sqrt": _recolour(source, cov_C @ torch.linalg.inv(cov_S), mu_S, mu_C),
        "swapped": _recolour(source, _power(cov_S, 0.5) @ _power(cov_C, -0.5), mu_C, mu_S),
        "orientation": _recolour(source, _power(cw_C, 0.5) @ _power(cw_S, -0.5), mu_S, mu_C),
        "not_centred": _recolour(source, _power(cov_C, 0.5) @ _power(cov_S, -0.5), torch.zeros(3), mu_C),
        "no_mean_added": _recolour(source, _power(cov_C, 0.5) @ _power(cov_S, -0.5), mu_S, torch.zeros(3)),
        "clamped": ref.clamp(0, 1),
    }


_HISTOGRAM_WRONGS = [
    (
        "unchanged",
        "your function returns the source image unchanged: transform its colours, "
        "p' = A (p - mu_S) + mu_C with A = Sigma_C^(1/2) Sigma_S^(-1/2)",
    ),
    (
        "mean_only",
        "your result has the target's mean colour but not its covariance: you shifted the mean only "
        "(p - mu_S + mu_C); the colours must also be transformed by A = Sigma_C^(1/2) Sigma_S^(-1/2)",
    ),
    (
        "std_per_channel",
        "you matched each channel's mean and standard deviation on its own: that ignores the "
        "correlations between R, G and B (the off-diagonal entries of the covariance). Use the full 3x3 "
        "covariance matrices: A = Sigma_C^(1/2) Sigma_S^(-1/2)",
    ),
    (
        "order",
        "the two matrix square roots are multiplied in the wrong order: A = Sigma_C^(1/2) Sigma_S^(-1/2) "
        "(first whiten with Sigma_S^(-1/2), then colour with Sigma_C^(1/2)), not Sigma_S^(-1/2) Sigma_C^(1/2)",
    ),
    (
        "no_inverse",
        "you used Sigma_S^(1/2) where Sigma_S^(-1/2) belongs (the inverse square root, eigenvalues "
        "to the power -1/2): A = Sigma_C^(1/2) Sigma_S^(-1/2)",
    ),
    (
        "no_sqrt",
        "you used the covariance matrices themselves, Sigma_C Sigma_S^(-1), instead of their square "
        "roots: A = Sigma_C^(1/2) Sigma_S^(-1/2) (a covariance transforms with A twice: A Sigma_S A^T)",
    ),
    (
        "swapped",
        "source and target are swapped: the result must have the colour statistics of `target` "
        "(the content), and be made of the pixels of `source` (the style)",
    ),
    (
        "orientation",
        "your colour covariance has the wrong orientation: reshaping the [1, 3, H, W] tensor "
        "straight to [H*W, 3] mixes channels and pixels (in memory all of R comes first). Use "
        "X = image.reshape(3, -1) (row c = channel c at every pixel) and Sigma = (X - mu)(X - mu)^T / N",
    ),
    ("not_centred", "you forgot to subtract the source's mean before applying A: p' = A (p - mu_S) + mu_C"),
    ("no_mean_added", "you forgot to add the target's mean after applying A: p' = A (p - mu_S) + mu_C"),
    (
        "clamped",
        "your result is clamped to [0, 1]: return the transform itself (the caller clamps); "
        "clamping changes the mean and covariance",
    ),
]


def _is_affine_in(out: Tensor, source: Tensor) -> bool:
    """out's pixels are A p + b of the source's pixels p (one A, b for the whole image)."""
    P = torch.cat([source.reshape(3, -1), torch.ones(1, source[0, 0].numel(), dtype=source.dtype)]).T
    Y = out.reshape(3, -1).T
    B = torch.linalg.lstsq(P, Y).solution
    return _close(P @ B, Y, rtol=1e-4)


def _colour_inputs(seed: int, shape: tuple[int, ...]) -> Tensor:
    """Seeded colour images whose channels are correlated (like a photo's), some values outside the mean."""
    base = _seeded(shape, seed)
    mix = torch.tensor([[0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.1, 0.3, 0.6]]) + 0.2 * _seeded((3, 3), seed + 1)
    return torch.einsum("ck,nkhw->nchw", mix, base).clamp(0, 1).contiguous()


def diagnose_match_colour_histogram(fn: Callable[..., Any]) -> list[str]:
    name = "match_colour_histogram"
    cases = [((1, 3, 6, 7), (1, 3, 5, 4), 10), ((1, 3, 4, 4), (1, 3, 8, 6), 20), ((1, 3, 5, 9), (1, 3, 5, 9), 30)]
    for shape_S, shape_C, seed in cases:
        source = _colour_inputs(seed, shape_S) * 0.5 + 0.25  # low contrast: the result leaves [0, 1]
        target = _colour_inputs(seed + 5, shape_C)
        before = {"source": source.clone(), "target": target.clone()}
        out = fn(source, target)
        problem = _mutated(before, {"source": source, "target": target}, name) or _type_problem(
            out, name, shape_S, "the recoloured source image, the source's shape"
        )
        if problem:
            return [problem]
        got, S, C = out.detach().double(), source.double(), target.double()
        mu, cov = _mean_cov(got)
        mu_C, cov_C = _mean_cov(C)
        if _close(mu, mu_C, 1e-4) and _close(cov, cov_C, 2e-3) and _is_affine_in(got, S):
            continue  # the target's mean and covariance by an affine colour map (symmetric or Cholesky A)
        for key, message in _HISTOGRAM_WRONGS:
            if _close(got, _histogram_wrongs(S, C)[key], 1e-3):
                return [message]
        if not _close(mu, mu_C, 1e-4):
            return [
                f"the mean colour of your result is {[round(float(v), 4) for v in mu]}, the target's is "
                f"{[round(float(v), 4) for v in mu_C]} (source {list(shape_S)}, target {list(shape_C)})"
            ]
        if not _is_affine_in(got, S):
            return [
                "your result is not one affine colour map of the source's pixels (p' = A p + b with the "
                "same A and b for every pixel)"
            ]
        return [
            f"the colour covariance of your result differs from the target's by up to "
            f"{float((cov - cov_C).abs().max()):.3g} (largest entry {float(cov_C.abs().max()):.3g}): "
            "check A = Sigma_C^(1/2) Sigma_S^(-1/2) and Sigma = (X - mu)(X - mu)^T / N"
        ]
    # the same image as source and target: nothing to change
    image = _colour_inputs(40, (1, 3, 5, 6))
    out = fn(image, image.clone())
    if isinstance(out, Tensor) and not _close(out.detach().double(), image.double(), 1e-3):
        return ["with the same image as source and target your result should be that image (A = identity)"]
    return []


# --------------------------------------------------------------------------- guided_gram_matrix


def _gram(A: Tensor) -> Tensor:
    return A @ A.T


def _guided_reference(a: Tensor, mask: Tensor) -> Tensor:
    m = F.adaptive_avg_pool2d(mask, (a.shape[-2], a.shape[-1]))
    return _gram((a * m).reshape(a.shape[1], -1))


def _guided_wrongs(a: Tensor, mask: Tensor) -> dict[str, Tensor]:
    n_C, size = a.shape[1], (a.shape[-2], a.shape[-1])
    m = F.adaptive_avg_pool2d(mask, size)
    A = a.reshape(n_C, -1)
    Am = (a * m).reshape(n_C, -1)
    ref = _gram(Am)
    near = F.interpolate(mask, size=size, mode="nearest")
    bil = F.interpolate(mask, size=size, mode="bilinear", align_corners=False)
    return {
        "not_squared": (A * m.reshape(1, -1)) @ A.T,
        "on_gram": _gram(A) * m.mean(),
        "on_gram_sum": _gram(A) * m.sum(),
        "no_mask": _gram(A),
        "nearest": _gram((a * near).reshape(n_C, -1)),
        "bilinear": _gram((a * bil).reshape(n_C, -1)),
        "max_pool": _gram((a * F.adaptive_max_pool2d(mask, size)).reshape(n_C, -1)),
        "normalised": ref / (m * m).sum(),
        "normalised_sum": ref / m.sum(),
        "positions_first": _gram((a * m).reshape(-1, n_C).T),
        "channels_last": _gram((a * m).permute(0, 2, 3, 1).reshape(n_C, -1)),
    }


_GUIDED_FIX = (
    "G_kk' = sum_ij (m_ij)^2 a_ijk a_ijk': multiply the activations by the layer's mask, then take the Gram matrix"
)
_GUIDED_WRONGS = [
    (
        "not_squared",
        "the mask enters once, not squared: you weighted the positions by m_ij in "
        "A diag(m) A^T; the guided activations a * m go into *both* factors of the Gram matrix. " + _GUIDED_FIX,
    ),
    (
        "on_gram",
        "you multiplied the Gram matrix by the mask's mean: the mask must weigh each position of the "
        "activations before the sum over positions. " + _GUIDED_FIX,
    ),
    (
        "on_gram_sum",
        "you multiplied the Gram matrix by the mask's sum: the mask must weigh each position of the "
        "activations before the sum over positions. " + _GUIDED_FIX,
    ),
    ("no_mask", "your result ignores the mask: it is the plain Gram matrix. " + _GUIDED_FIX),
    (
        "nearest",
        "you downsampled the mask by picking pixels (mode='nearest'): each position of the layer covers "
        "a block of pixels; average the mask over it with F.adaptive_avg_pool2d(mask, (n_H, n_W))",
    ),
    (
        "bilinear",
        "you downsampled the mask by bilinear interpolation, which samples a few pixels: average it "
        "over each position's block with F.adaptive_avg_pool2d(mask, (n_H, n_W))",
    ),
    (
        "max_pool",
        "you downsampled the mask with a max: average it over each position's block with "
        "F.adaptive_avg_pool2d(mask, (n_H, n_W))",
    ),
    (
        "normalised",
        "you divided by the mask's area sum (m_ij)^2: the guided Gram matrix is not normalised "
        "(style_transfer scales the style's target instead). " + _GUIDED_FIX,
    ),
    ("normalised_sum", "you divided by the mask's sum: the guided Gram matrix is not normalised. " + _GUIDED_FIX),
    (
        "positions_first",
        "your unroll mixes channels and positions: reshape the masked [1, n_C, n_H, n_W] tensor to "
        "[n_C, n_H*n_W] (not [n_H*n_W, n_C]), then G = A @ A.T",
    ),
    (
        "channels_last",
        "your unroll mixes channels and positions: a channels-last view reshaped straight to "
        "[n_C, n_H*n_W]; reshape the masked [1, n_C, n_H, n_W] tensor to [n_C, n_H*n_W], then G = A @ A.T",
    ),
]

_NOT_DOWNSAMPLED = (
    "the mask is given at the image's size [1, 1, H, W] and the activations are [1, n_C, n_H, n_W]: downsample the "
    "mask to the layer's size first, m = F.adaptive_avg_pool2d(mask, (n_H, n_W)) (your function raised {err})"
)


def diagnose_guided_gram_matrix(fn: Callable[..., Any]) -> list[str]:
    name = "guided_gram_matrix"
    cases = [((1, 3, 4, 5), 4, 50), ((1, 4, 2, 3), 3, 60), ((1, 2, 3, 3), 2, 70)]
    first = None
    for shape, factor, seed in cases:
        a = (torch.randn(*shape, generator=torch.Generator().manual_seed(seed))).requires_grad_(first is None)
        mask = _seeded((1, 1, shape[2] * factor, shape[3] * factor), seed + 1)
        before = {"a": a.detach().clone(), "mask": mask.clone()}
        try:
            out = fn(a, mask)
        except RuntimeError as e:
            if "size of tensor" in str(e) or "must match" in str(e):
                return [_NOT_DOWNSAMPLED.format(err=f"{type(e).__name__}: {str(e).splitlines()[0]}")]
            raise
        n_C = shape[1]
        problem = _mutated(before, {"a": a, "mask": mask}, name) or _type_problem(
            out, name, (n_C, n_C), "the [n_C, n_C] guided Gram matrix"
        )
        if problem:
            if isinstance(out, Tensor) and tuple(out.shape) == (shape[2] * shape[3],) * 2:
                problem += " (it correlates positions, not channels: G = A @ A.T with A of shape [n_C, n_H*n_W])"
            return [problem]
        got, ad, md = out.detach().double(), a.detach().double(), mask.double()
        if _close(got, _guided_reference(ad, md)):
            if first is None:
                first = (out, a, mask)
            continue
        wrongs = _guided_wrongs(ad, md)
        for key, message in _GUIDED_WRONGS:
            if _close(got, wrongs[key]):
                return [message]
        want = _guided_reference(ad, md)
        return [
            f"wrong guided Gram matrix for activations {list(shape)} and a mask {list(mask.shape)}: the largest "
            f"difference is {float((got - want).abs().max()):.4g} (largest expected entry "
            f"{float(want.abs().max()):.4g}). " + _GUIDED_FIX
        ]
    # a mask already at the layer's size, all ones: the plain Gram matrix
    a = torch.randn(1, 3, 2, 2, generator=torch.Generator().manual_seed(80))
    got = fn(a, torch.ones(1, 1, 2, 2))
    if not isinstance(got, Tensor) or not _close(got.detach().double(), _gram(a.double().reshape(3, -1))):
        return ["with an all-ones mask the guided Gram matrix must be the plain Gram matrix sum_ij a_ijk a_ijk'"]
    # gradient to the activations
    assert first is not None
    out, a, mask = first
    if not out.requires_grad:
        return [
            f"{name}'s result does not require grad although a does: it is cut from the graph (.detach(), "
            ".item(), numpy or torch.no_grad() on the way?), so no gradient can reach the pixels of G"
        ]
    W = _seeded((a.shape[1], a.shape[1]), 90)
    (grad,) = torch.autograd.grad((out * W).sum(), [a])
    ad = a.detach().double().requires_grad_(True)
    (want,) = torch.autograd.grad((_guided_reference(ad, mask.double()) * W.double()).sum(), [ad])
    if not _close(grad.double(), want, 1e-3):
        return [
            f"the gradient of {name}'s result with respect to a is wrong: part of the computation is "
            "detached from the graph (.detach(), .data, .item() or numpy in the middle?)"
        ]
    return []


EXERCISES: list[Exercise] = [
    Exercise(
        grade_id="match_colour_histogram",
        function="match_colour_histogram",
        diagnose=diagnose_match_colour_histogram,
        notebook="05_controlling_style",
        teaches="Colour histogram matching: the style's pixels p' = A (p - mu_S) + mu_C with "
        "A = Sigma_C^(1/2) Sigma_S^(-1/2), so the style has the content's mean colour and colour covariance.",
        points=1,
    ),
    Exercise(
        grade_id="guided_gram_matrix",
        function="guided_gram_matrix",
        diagnose=diagnose_guided_gram_matrix,
        notebook="05_controlling_style",
        teaches="Spatial control: the guided Gram matrix G_kk' = sum_ij (m_ij)^2 a_ijk a_ijk', the mask "
        "downsampled to the layer by area averaging.",
        points=1,
    ),
]

_BY_ID = {ex.grade_id: ex for ex in EXERCISES}

check_match_colour_histogram = _BY_ID["match_colour_histogram"].check
check_guided_gram_matrix = _BY_ID["guided_gram_matrix"].check
