"""The notebook-05 checkers: the reference passes, typical wrong versions get their diagnosis."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from course_nst import controls
from course_nst.checks import EXERCISES

HIST = EXERCISES["match_colour_histogram"]
GUIDED = EXERCISES["guided_gram_matrix"]


def _stats(x):
    X = x.reshape(3, -1)
    mu = X.mean(1)
    D = X - mu[:, None]
    return X, mu, D @ D.T / D.shape[1]


def _power(s, p):
    e, V = torch.linalg.eigh(s.double())
    return (V @ torch.diag(e.clamp_min(1e-12) ** p) @ V.T).to(s.dtype)


def _apply(source, A, mu_from, mu_to):
    X = source.reshape(3, -1)
    return (A @ (X - mu_from[:, None]) + mu_to[:, None]).reshape(source.shape)


def hist_cholesky(source, target):
    _, mu_S, cov_S = _stats(source.double())
    _, mu_C, cov_C = _stats(target.double())
    A = torch.linalg.cholesky(cov_C) @ torch.linalg.inv(torch.linalg.cholesky(cov_S))
    return _apply(source.double(), A, mu_S, mu_C).float()


def hist_mean_only(source, target):
    return source - source.mean((2, 3), keepdim=True) + target.mean((2, 3), keepdim=True)


def hist_per_channel(source, target):
    mu_S, mu_C = source.mean((2, 3), keepdim=True), target.mean((2, 3), keepdim=True)
    sd_S, sd_C = source.std((2, 3), keepdim=True, unbiased=False), target.std((2, 3), keepdim=True, unbiased=False)
    return (source - mu_S) / sd_S * sd_C + mu_C


def hist_wrong_orientation(source, target):
    XS, XC = source.reshape(-1, 3), target.reshape(-1, 3)  # mixes channels and pixels
    cov_S, cov_C = torch.cov(XS.T, correction=0), torch.cov(XC.T, correction=0)
    _, mu_S, _ = _stats(source)
    _, mu_C, _ = _stats(target)
    return _apply(source, _power(cov_C, 0.5) @ _power(cov_S, -0.5), mu_S, mu_C)


def hist_wrong_order(source, target):
    _, mu_S, cov_S = _stats(source)
    _, mu_C, cov_C = _stats(target)
    return _apply(source, _power(cov_S, -0.5) @ _power(cov_C, 0.5), mu_S, mu_C)


def hist_clamped(source, target):
    return controls.match_colour_histogram(source, target).clamp(0, 1)


def hist_in_place(source, target):
    source -= 0  # touches nothing, but then really changes it
    source.mul_(1.0001)
    return controls.match_colour_histogram(source, target)


def hist_not_implemented(source, target):
    raise NotImplementedError()


def test_histogram_reference_and_cholesky_pass():
    assert HIST.evaluate(controls.match_colour_histogram).passed
    assert HIST.evaluate(hist_cholesky).passed  # another valid A: same mean and covariance


@pytest.mark.parametrize(
    "fn, words",
    [
        (hist_mean_only, "mean only"),
        (hist_per_channel, "each channel's mean and standard deviation on its own"),
        (hist_wrong_orientation, "wrong orientation"),
        (hist_wrong_order, "wrong order"),
        (hist_clamped, "clamped"),
        (hist_in_place, "in place"),
        (lambda s, t: s, "unchanged"),
        (lambda s, t: controls.match_colour_histogram(t, s)[..., :1, :1], "shape"),
        (lambda s, t: None, "return"),
    ],
)
def test_histogram_diagnoses(fn, words):
    result = HIST.evaluate(fn)
    assert not result.passed
    assert any(words in p for p in result.problems), result.problems


def test_histogram_not_implemented():
    assert HIST.evaluate(hist_not_implemented).not_implemented


def _m(a, mask):
    return F.adaptive_avg_pool2d(mask, a.shape[-2:])


def guided_not_squared(a, mask):
    A = a.reshape(a.shape[1], -1)
    return (A * _m(a, mask).reshape(1, -1)) @ A.T


def guided_not_downsampled(a, mask):
    F_r = (a * mask).reshape(a.shape[1], -1)
    return F_r @ F_r.T


def guided_nearest(a, mask):
    F_r = (a * F.interpolate(mask, size=a.shape[-2:], mode="nearest")).reshape(a.shape[1], -1)
    return F_r @ F_r.T


def guided_on_gram(a, mask):
    A = a.reshape(a.shape[1], -1)
    return A @ A.T * _m(a, mask).mean()


def guided_detached(a, mask):
    return controls.guided_gram_matrix(a.detach(), mask)


def guided_positions_first(a, mask):
    F_r = (a * _m(a, mask)).reshape(-1, a.shape[1])
    return F_r.T @ F_r


def guided_no_mask(a, mask):
    A = a.reshape(a.shape[1], -1)
    return A @ A.T


def test_guided_reference_passes():
    assert GUIDED.evaluate(controls.guided_gram_matrix).passed


@pytest.mark.parametrize(
    "fn, words",
    [
        (guided_not_squared, "not squared"),
        (guided_not_downsampled, "downsample the mask"),
        (guided_nearest, "picking pixels"),
        (guided_on_gram, "mask's mean"),
        (guided_detached, "does not require grad"),
        (guided_positions_first, "mixes channels and positions"),
        (guided_no_mask, "ignores the mask"),
    ],
)
def test_guided_diagnoses(fn, words):
    result = GUIDED.evaluate(fn)
    assert not result.passed
    assert any(words in p for p in result.problems), result.problems


def test_checkers_are_registered_for_notebook_05():
    assert HIST.notebook == GUIDED.notebook == "05_controlling_style"
    from course_nst.checks import check_guided_gram_matrix, check_match_colour_histogram

    assert callable(check_guided_gram_matrix) and callable(check_match_colour_histogram)
