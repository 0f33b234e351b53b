"""Controlling the result: colour, several styles, regions and scale.

The maths of Gatys, Ecker, Bethge, Hertzmann & Shechtman, "Controlling Perceptual
Factors in Neural Style Transfer" (CVPR 2017, arXiv 1611.07865), as pure functions
of tensors. :func:`course_nst.style_transfer` uses them for its ``colour``,
``style_weights``, ``masks`` and ``style_scale`` options; notebook 05 explains them.

Images are ``[1, 3, H, W]`` in [0, 1]; activations ``[1, n_C, n_H, n_W]``; masks
(the paper's guidance channels T_r) ``[1, 1, H, W]`` in [0, 1].

Colour (section 4 of the paper). The Gram matrix of the first layers holds the
correlations between colour channels, so the style's colours leak into G. Two cures:

* **luminance-only transfer**: work in YIQ (the NTSC colour space: Y the luminance,
  I and Q the colour). The style's luminance L_S is matched to the content's,
  ``L_S' = sigma_C / sigma_S * (L_S - mu_S) + mu_C`` (the paper's equation 5), the
  algorithm runs on the luminance images, and the result's Y is put back together with
  the content's I and Q.
* **colour histogram matching**: every pixel p of the style image is transformed,
  ``p' = A (p - mu_S) + mu_C``, so that the style's colours get the content's mean mu_C
  and covariance Sigma_C. We use the symmetric (PCA) square roots,
  ``A = Sigma_C^(1/2) Sigma_S^(-1/2)`` (the paper's "image analogies" choice); the
  Cholesky choice ``A = L_C L_S^(-1)`` gives the same mean and covariance and only
  rotates the colours differently.

Regions (section 5). With a mask m_r per region, the guided activations are
``a_r = a * m_r^[l]``, where m_r^[l] is the mask downsampled to layer l's size, and the
guided Gram matrix is ``G_r,kk' = sum_ij (m_r,ij^[l])^2 a_ijk a_ijk'``. We downsample by
area averaging (each unit's mask value is the mean of the mask over the pixels its
position covers: the paper's simple variant, not the variant that erodes the mask by
each unit's receptive field).

Scale (section 6). ``style_transfer(style_scale=s)`` resizes the style image so that its
longer side is s times the generated image's. The painting is the same, its pixels are
more (s > 1) or fewer (s < 1); the network's units cover a fixed number of pixels, so a
larger ``style_scale`` gives larger strokes in G, a smaller one smaller strokes.
:func:`high_frequency_share` measures it: the larger the strokes, the smaller the share.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .errors import InputError

__all__ = [
    "YIQ_FROM_RGB",
    "COLOUR_MODES",
    "rgb_to_yiq",
    "yiq_to_rgb",
    "luminance",
    "match_luminance",
    "match_colour_histogram",
    "recombine_luminance",
    "colour_mean_cov",
    "layer_mask",
    "resize_mask",
    "guided_gram_matrix",
    "check_masks",
    "check_style_weights",
    "check_style_scale",
    "high_frequency_share",
]

#: The NTSC RGB -> YIQ matrix (rows: Y, I, Q). Y is the luminance.
YIQ_FROM_RGB = torch.tensor(
    [
        [0.299, 0.587, 0.114],
        [0.595716, -0.274453, -0.321263],
        [0.211456, -0.522591, 0.311135],
    ],
    dtype=torch.float64,
)

#: The values of ``style_transfer(colour=...)``.
COLOUR_MODES = (None, "luminance", "histogram")


def _mix_channels(image: Tensor, matrix: Tensor) -> Tensor:
    """Apply a 3x3 colour matrix to every pixel of a [N, 3, H, W] image."""
    if image.dim() != 4 or image.shape[1] != 3:
        raise ValueError(f"expected an image [N, 3, H, W], got {list(image.shape)}")
    return torch.einsum("ck,nkhw->nchw", matrix.to(image.dtype), image)


def rgb_to_yiq(image: Tensor) -> Tensor:
    """RGB ``[N, 3, H, W]`` -> YIQ (channel 0: luminance Y; 1, 2: the colour channels I, Q)."""
    return _mix_channels(image, YIQ_FROM_RGB.to(image.device))


def yiq_to_rgb(image: Tensor) -> Tensor:
    """YIQ ``[N, 3, H, W]`` -> RGB, the exact inverse of :func:`rgb_to_yiq` (not clamped)."""
    return _mix_channels(image, torch.linalg.inv(YIQ_FROM_RGB).to(image.device))


def luminance(image: Tensor) -> Tensor:
    """The luminance Y of an RGB image, ``[N, 1, H, W]``."""
    return rgb_to_yiq(image)[:, :1]


def match_luminance(lum_S: Tensor, lum_C: Tensor, eps: float = 1e-8) -> Tensor:
    """L_S' = sigma_C / sigma_S * (L_S - mu_S) + mu_C: the style's luminance with the content's mean and std."""
    mu_S, mu_C = lum_S.mean(), lum_C.mean()
    sigma_S, sigma_C = lum_S.std(unbiased=False), lum_C.std(unbiased=False)
    return sigma_C / (sigma_S + eps) * (lum_S - mu_S) + mu_C


def recombine_luminance(generated: Tensor, content: Tensor) -> Tensor:
    """The generated image's luminance Y with the content's colour channels I, Q, as RGB in [0, 1]."""
    yiq = torch.cat([luminance(generated), rgb_to_yiq(content)[:, 1:]], dim=1)
    return yiq_to_rgb(yiq).clamp(0, 1)


def colour_mean_cov(image: Tensor) -> tuple[Tensor, Tensor]:
    """Mean colour mu ``[3]`` and colour covariance Sigma ``[3, 3]`` over the pixels of ``[1, 3, H, W]``."""
    X = image.reshape(3, -1)  # row c: channel c at every pixel
    mu = X.mean(dim=1)
    D = X - mu[:, None]
    return mu, D @ D.T / D.shape[1]


def _sqrt_psd(sigma: Tensor, power: float, eps: float) -> Tensor:
    """Sigma^power for a symmetric positive semi-definite 3x3 matrix (eigendecomposition, eps added)."""
    e, V = torch.linalg.eigh(sigma)
    e = e.clamp_min(0) + eps
    return V @ torch.diag(e**power) @ V.T


def match_colour_histogram(source: Tensor, target: Tensor, eps: float = 1e-8) -> Tensor:
    """Transform the colours of ``source`` so that their mean and covariance are those of ``target``.

    Every pixel p of the source becomes p' = A (p - mu_S) + mu_C with
    A = Sigma_C^(1/2) Sigma_S^(-1/2) (symmetric square roots; ``eps`` is added to the
    eigenvalues so that a flat source image does not divide by zero). Not clamped: the
    caller clamps to [0, 1] if it needs an image.

    Args:
        source: the image to recolour (the style image S), ``[1, 3, H, W]``.
        target: the image whose colour statistics to take (the content image C), any size.
    """
    mu_S, sigma_S = colour_mean_cov(source.double())  # float64: the small eigenvalues matter
    mu_C, sigma_C = colour_mean_cov(target.double())
    A = _sqrt_psd(sigma_C, 0.5, eps) @ _sqrt_psd(sigma_S, -0.5, eps)
    X = source.double().reshape(3, -1)
    out = A @ (X - mu_S[:, None]) + mu_C[:, None]
    return out.reshape(source.shape).to(source.dtype)


def layer_mask(mask: Tensor, size: tuple[int, int]) -> Tensor:
    """The mask m^[l] of one layer: ``mask`` ``[1, 1, H, W]`` downsampled to ``size`` = (n_H, n_W) by area averaging."""
    return F.adaptive_avg_pool2d(mask, size)


def resize_mask(mask: Tensor, size: tuple[int, int]) -> Tensor:
    """A mask ``[1, 1, H, W]`` at the image size ``size`` = (H', W') (antialiased bilinear, kept in [0, 1])."""
    if tuple(mask.shape[-2:]) == tuple(size):
        return mask
    out = F.interpolate(mask, size=tuple(size), mode="bilinear", align_corners=False, antialias=True)
    return out.clamp(0, 1)


def guided_gram_matrix(a: Tensor, mask: Tensor) -> Tensor:
    """The guided Gram matrix G_kk' = sum_ij (m_ij)^2 a_ijk a_ijk' of one layer.

    Args:
        a: activations ``[1, n_C, n_H, n_W]``.
        mask: the region's mask ``[1, 1, H, W]`` in [0, 1], at the image's size (or already
            at the layer's); it is downsampled to (n_H, n_W) by :func:`layer_mask`.

    With an all-ones mask this is :func:`course_nst.costs.gram_matrix`.
    """
    m = layer_mask(mask.to(a.dtype), (a.shape[-2], a.shape[-1]))
    F_r = (a * m).reshape(a.shape[1], -1)  # the guided activations, unrolled to [n_C, n_H*n_W]
    return F_r @ F_r.T


def high_frequency_share(image: Tensor) -> float:
    """The share of the luminance's spectral power (mean removed) above half the highest frequency.

    Fine detail (small strokes, edges a pixel or two apart) has a large share; large smooth
    strokes a small one. ``image`` is ``[1, 3, H, W]``; the result is in [0, 1].
    """
    y = luminance(image)[0, 0].double()
    power = torch.fft.fft2(y - y.mean()).abs() ** 2
    fy = torch.fft.fftfreq(y.shape[0], device=y.device).abs()[:, None].expand_as(power)
    fx = torch.fft.fftfreq(y.shape[1], device=y.device).abs()[None, :].expand_as(power)
    total = float(power.sum())
    return float(power[torch.maximum(fy, fx) > 0.25].sum()) / total if total > 0 else 0.0


# --------------------------------------------------------------------------- input checks


def check_style_weights(weights: Sequence[float] | None, n_styles: int) -> list[float]:
    """The blend weights, normalised to sum 1 (equal weights when ``None``); InputError if they do not fit."""
    if weights is None:
        return [1.0 / n_styles] * n_styles
    if isinstance(weights, (str, bytes)) or not isinstance(weights, Sequence):
        raise InputError(f"style_weights must be a list of numbers, one per style, got {weights!r}")
    weights = list(weights)
    if len(weights) != n_styles:
        raise InputError(f"got {len(weights)} style weight(s) for {n_styles} style image(s); give one weight per style")
    for w in weights:
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
            raise InputError(f"every style weight must be a number >= 0, got {w!r}")
    total = float(sum(weights))
    if total <= 0:
        raise InputError("the style weights are all 0; at least one must be > 0")
    return [float(w) / total for w in weights]


def check_style_scale(style_scale: float) -> float:
    """``style_scale`` as a float; InputError unless it is a finite number > 0."""
    ok = isinstance(style_scale, (int, float)) and not isinstance(style_scale, bool)
    if not ok or not math.isfinite(style_scale) or style_scale <= 0:
        raise InputError(
            f"style_scale must be a number > 0 (the style's size relative to the content's), got {style_scale!r}"
        )
    return float(style_scale)


def check_masks(
    masks: Sequence[Tensor],
    n_styles: int,
    content_shape: tuple[int, int],
    out_shape: tuple[int, int],
) -> list[Tensor]:
    """Check the masks and return them as ``[1, 1, *out_shape]`` float tensors.

    Each mask must be a tensor ``[1, 1, H, W]`` (``[H, W]`` and ``[1, H, W]`` are accepted)
    with values in [0, 1], of the content image's size as given (``content_shape``) or
    of the output's (``out_shape``); one mask per style, and not all zero.
    """
    if isinstance(masks, Tensor) or not isinstance(masks, Sequence):
        raise InputError("masks must be a list of mask tensors, one per style")
    if len(masks) != n_styles:
        raise InputError(f"got {len(masks)} mask(s) for {n_styles} style image(s); give one mask per style")
    out = []
    for i, m in enumerate(masks, start=1):
        if not isinstance(m, Tensor):
            raise InputError(f"mask {i} must be a torch tensor [1, 1, H, W], got {type(m).__name__}")
        if m.dim() in (2, 3):
            m = m.reshape(1, 1, *m.shape[-2:]) if m.dim() == 2 or m.shape[0] == 1 else m
        if m.dim() != 4 or m.shape[:2] != (1, 1):
            raise InputError(f"mask {i} must have shape [1, 1, H, W], got {list(m.shape)}")
        m = m.detach().float().cpu()
        if not torch.isfinite(m).all() or m.min() < 0 or m.max() > 1:
            raise InputError(f"mask {i} must have values in [0, 1]")
        hw = tuple(m.shape[-2:])
        if hw not in (tuple(content_shape), tuple(out_shape)):
            raise InputError(
                f"mask {i} is {hw[1]}x{hw[0]} pixels but the content image is "
                f"{content_shape[1]}x{content_shape[0]}; a mask must have the content image's size"
            )
        m = resize_mask(m, out_shape)
        if float(m.max()) == 0.0:
            raise InputError(f"mask {i} is 0 everywhere: its style would not appear anywhere")
        out.append(m)
    return out
