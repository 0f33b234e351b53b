"""The cost functions of Neural Style Transfer, exactly as the lecture states them.

Every function is a pure function of tensors. Activations have the shape
``[1, n_C, n_H, n_W]`` (PyTorch's channels-first layout; the lecture writes the
same activation as ``a_ijk`` with ``i`` over the ``n_H`` rows, ``j`` over the
``n_W`` columns and ``k`` over the ``n_C`` channels).

Formulas (Gatys, Ecker & Bethge 2015, in the lecture's notation):

* content cost at one layer ``l``::

      J_content(C, G) = 1/2 * || a[l](C) - a[l](G) ||^2

* Gram ("style") matrix of a layer, shape ``[n_C, n_C]``, *not* normalised::

      G_kk' = sum_i sum_j a_ijk * a_ijk'

* style cost of one layer::

      J_style[l](S, G) = 1 / (2 n_H n_W n_C)^2 * || G[l](S) - G[l](G) ||_F^2

* style cost over several layers, with weights lambda[l]::

      J_style(S, G) = sum_l lambda[l] * J_style[l](S, G)

* total cost::

      J(G) = alpha * J_content(C, G) + beta * J_style(S, G)

Other courses normalise differently (the Coursera assignment divides the
content cost by ``4 n_H n_W n_C``, the PyTorch tutorial takes means). Those
choices only multiply each term by a constant, which ``alpha`` and ``beta``
absorb; the images that come out are the same for suitably rescaled weights.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

__all__ = [
    "content_cost",
    "gram_matrix",
    "layer_style_cost",
    "style_cost",
    "total_cost",
    "total_variation",
]


def _check_activation(a: Tensor, what: str) -> None:
    if not isinstance(a, Tensor):
        raise TypeError(f"{what} must be a torch.Tensor, got {type(a).__name__}")
    if a.dim() != 4 or a.shape[0] != 1:
        raise ValueError(f"{what} must have shape [1, n_C, n_H, n_W] (one image), got {list(a.shape)}")


def _check_same_shape(a: Tensor, b: Tensor, what_a: str, what_b: str) -> None:
    if a.shape != b.shape:
        raise ValueError(
            f"{what_a} has shape {list(a.shape)} but {what_b} has shape {list(b.shape)}; "
            "they must come from the same layer and the same image size"
        )


def content_cost(a_C: Tensor, a_G: Tensor) -> Tensor:
    """J_content(C, G) = 1/2 * sum of (a_C - a_G)^2 over every unit of the layer.

    Args:
        a_C: activations of the content image at layer l, ``[1, n_C, n_H, n_W]``.
        a_G: activations of the generated image at the same layer, same shape.

    Returns:
        A 0-dimensional tensor (differentiable with respect to ``a_G``).
    """
    _check_activation(a_C, "a_C")
    _check_activation(a_G, "a_G")
    _check_same_shape(a_C, a_G, "a_C", "a_G")
    diff = a_C - a_G
    return 0.5 * (diff * diff).sum()


def gram_matrix(a: Tensor) -> Tensor:
    """The Gram matrix G_kk' = sum_i sum_j a_ijk a_ijk' of one layer's activations.

    Args:
        a: activations ``[1, n_C, n_H, n_W]``.

    Returns:
        ``[n_C, n_C]`` tensor, symmetric and positive semi-definite. Not normalised:
        the normalisation lives in :func:`layer_style_cost`, as in the lecture.
    """
    _check_activation(a, "a")
    n_C = a.shape[1]
    # Unroll to [n_C, n_H * n_W]: row k holds channel k at every position (i, j).
    # For a contiguous NCHW tensor this is a view, so the Gram matrix is a single
    # matrix multiply without copying the activations.
    if not a.is_contiguous() and a.is_contiguous(memory_format=torch.channels_last):
        # channels_last (NHWC) activations, as the style-transfer loop computes them:
        # [n_H * n_W, n_C] is the view without a copy, and G = A^T A.
        A = a.permute(0, 2, 3, 1).reshape(-1, n_C)
        return A.t() @ A
    A = a.reshape(n_C, -1)
    return A @ A.t()


def layer_style_cost(a_S: Tensor, a_G: Tensor, *, gram_S: Tensor | None = None) -> Tensor:
    """J_style[l](S, G) = 1/(2 n_H n_W n_C)^2 * ||G(S) - G(G)||_F^2 for one layer.

    Args:
        a_S: activations of the style image at layer l, ``[1, n_C, n_H_S, n_W_S]``.
            May be ``None`` when ``gram_S`` is given.
        a_G: activations of the generated image at the same layer, ``[1, n_C, n_H, n_W]``.
        gram_S: optional precomputed Gram matrix of the style activations (so the
            style image's Gram matrix is computed once, not at every step).

    The normaliser uses ``n_H, n_W`` of the generated image. The style image may
    have another size: the Gram matrices are both ``[n_C, n_C]`` whatever the size.
    (When the sizes differ, G(S) is rescaled by the ratio of the numbers of
    positions, so that a style image twice as large does not count four times as
    much; for equal sizes the formula is exactly the lecture's.)
    """
    _check_activation(a_G, "a_G")
    _, n_C, n_H, n_W = a_G.shape
    if gram_S is None:
        _check_activation(a_S, "a_S")
        if a_S.shape[1] != n_C:
            raise ValueError(f"a_S has {a_S.shape[1]} channels but a_G has {n_C}; they must come from the same layer")
        gram_S = gram_matrix(a_S)
        positions_S = a_S.shape[2] * a_S.shape[3]
        if positions_S != n_H * n_W:
            gram_S = gram_S * (n_H * n_W / positions_S)
    elif gram_S.shape != (n_C, n_C):
        raise ValueError(f"gram_S must have shape [{n_C}, {n_C}], got {list(gram_S.shape)}")
    gram_G = gram_matrix(a_G)
    diff = gram_S - gram_G
    return (diff * diff).sum() / (2.0 * n_H * n_W * n_C) ** 2


def style_cost(
    acts_S: Mapping[str, Tensor],
    acts_G: Mapping[str, Tensor],
    weights: Mapping[str, float],
) -> Tensor:
    """J_style(S, G) = sum over layers l of lambda[l] * J_style[l](S, G).

    Args:
        acts_S: ``{layer name: activation of S}`` (at least the layers in ``weights``).
        acts_G: ``{layer name: activation of G}`` (the same layers).
        weights: ``{layer name: lambda[l]}``.
    """
    if not weights:
        raise ValueError("style_cost needs at least one style layer in `weights`")
    total = None
    for name, lam in weights.items():
        for acts, what in ((acts_S, "acts_S"), (acts_G, "acts_G")):
            if name not in acts:
                raise KeyError(f"layer {name!r} is in the weights but not in {what}")
        term = lam * layer_style_cost(acts_S[name], acts_G[name])
        total = term if total is None else total + term
    return total


def total_cost(J_content: Tensor, J_style: Tensor, alpha: float = 10.0, beta: float = 40.0) -> Tensor:
    """J(G) = alpha * J_content(C, G) + beta * J_style(S, G)."""
    return alpha * J_content + beta * J_style


def total_variation(image: Tensor) -> Tensor:
    """Anisotropic total variation: the sum of squared differences between neighbours.

    Not part of the lecture's cost; a small multiple of it is an optional
    smoothness prior (``tv_weight`` in :func:`course_nst.style_transfer`) that
    removes high-frequency speckle from images optimised from white noise.
    """
    if not isinstance(image, Tensor) or image.dim() != 4:
        raise ValueError(f"image must be a [N, C, H, W] tensor, got {getattr(image, 'shape', type(image))}")
    dh = image[:, :, 1:, :] - image[:, :, :-1, :]
    dw = image[:, :, :, 1:] - image[:, :, :, :-1]
    return (dh * dh).sum() + (dw * dw).sum()
