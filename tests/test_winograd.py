"""Winograd F(4x4, 3x3) convolutions, the opt-in ``winograd=True`` of the fast path
(course_nst/_fast/winograd.py).

Checked against float64 direct convolutions (values and input gradients), for the
shapes the rules of ``plan`` admit and for the awkward ones (sizes that are not a
multiple of the tile, a batch, a 1x1 image, one band of tiles at a time); the fast
path of VGG19 must take this form where the rules say so, only when asked, and
``style_transfer(winograd=True)`` must optimise the same function.
"""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_nst import InputError, samples, style_transfer
from course_nst._fast import WeightCache, fast_features
from course_nst._fast import winograd as _winograd
from course_nst.backbones import load_backbone
from course_nst.transfer import StyleTransferObjective, initial_image


def _rel(a, b):
    return float((a.double() - b).abs().max() / b.abs().max())


@pytest.fixture(params=["whole", "banded"])
def bands(request, monkeypatch):
    """The whole image at once, or (banded) one row of tiles at a time."""
    if request.param == "banded":
        monkeypatch.setattr(_winograd, "BAND_FLOATS", 1)
        monkeypatch.setattr(_winograd, "MIN_BAND_TILES", 1)
    return request.param


@pytest.mark.parametrize(
    "n, c_in, c_out, h, w, bias",
    [
        (1, 128, 128, 16, 16, True),  # whole tiles
        (1, 128, 256, 13, 17, True),  # the last tiles stick out of the image
        (2, 256, 128, 9, 6, False),  # a batch, no bias
        (1, 128, 128, 1, 1, True),  # one pixel: only the kernel's centre sees it
        (1, 32, 48, 7, 5, True),  # any channel count works (the rules decide when)
    ],
)
def test_conv3x3_equals_direct_convolution(n, c_in, c_out, h, w, bias, bands):
    torch.manual_seed(0)
    x = torch.randn(n, c_in, h, w)
    weight = torch.randn(c_out, c_in, 3, 3) / (9 * c_in) ** 0.5
    b = torch.randn(c_out) if bias else None
    ref = F.conv2d(x.double(), weight.double(), None if b is None else b.double(), padding=1)
    u = _winograd.transform_weights(weight)
    assert u.shape == (36, c_out, c_in)
    y = _winograd.conv3x3(x.contiguous(memory_format=torch.channels_last), u, b)
    assert y.shape == ref.shape
    assert y.is_contiguous(memory_format=torch.channels_last)
    assert _rel(y, ref) < 5e-5  # float32 Winograd: ~1e-5; a wrong transform or tile: O(1)
    # NCHW input gives the same result
    assert torch.allclose(_winograd.conv3x3(x, u, b), y, rtol=0, atol=1e-6 * float(ref.abs().max()))


@pytest.mark.parametrize("h, w", [(12, 10), (9, 7)])
def test_input_gradient_equals_direct_and_weights_get_none(h, w, bands):
    torch.manual_seed(1)
    x = torch.randn(2, 128, h, w)
    conv = nn.Conv2d(128, 192, 3, padding=1).requires_grad_(False)
    x64 = x.double().requires_grad_(True)
    ref = F.conv2d(x64, conv.weight.double(), conv.bias.double(), padding=1)
    grad_out = torch.randn_like(ref)
    ref.backward(grad_out)

    u = _winograd.transform_weights(conv.weight)
    x32 = x.clone().contiguous(memory_format=torch.channels_last).requires_grad_(True)
    y = _winograd.conv3x3_frozen(x32, u, conv.bias)
    assert _rel(y.detach(), ref.detach()) < 5e-5
    y.backward(grad_out.float())
    assert x32.grad.is_contiguous(memory_format=torch.channels_last)
    assert _rel(x32.grad, x64.grad) < 5e-5
    assert conv.weight.grad is None and conv.bias.grad is None


def test_output_can_be_modified_in_place():
    # the fast path runs ReLU in place on conv outputs nobody asked for
    conv = nn.Conv2d(128, 128, 3, padding=1).requires_grad_(False)
    u = _winograd.transform_weights(conv.weight)
    x = torch.randn(1, 128, 8, 8, requires_grad=True)
    y = torch.relu_(_winograd.conv3x3_frozen(x, u, conv.bias))
    y.sum().backward()
    x2 = x.detach().clone().requires_grad_(True)
    torch.relu(F.conv2d(x2, conv.weight, conv.bias, padding=1)).sum().backward()
    assert torch.allclose(x.grad, x2.grad, atol=1e-4)


def _conv(c_in, c_out, **kw):
    return nn.Conv2d(c_in, c_out, kw.pop("k", 3), padding=kw.pop("padding", 1), **kw)


@pytest.mark.parametrize(
    "conv, shape, expected",
    [
        (_conv(256, 256), (1, 256, 64, 64), True),  # VGG19 conv3_x at 256 px
        (_conv(128, 256), (1, 128, 64, 64), True),  # conv3_1
        (_conv(512, 512), (1, 512, 32, 32), True),  # conv4_x at 256 px
        (_conv(512, 512), (1, 512, 16, 16), True),  # conv5_1 at 256 px: 16 tiles, enough
        (_conv(512, 512), (1, 512, 8, 8), False),  # 4 tiles: the 38 MB kernel does not pay off
        (_conv(256, 256), (1, 256, 8, 8), True),
        (_conv(256, 256), (1, 256, 128, 128), True),  # conv3_x at 512 px: 4M values, still in
        (_conv(256, 256), (1, 256, 256, 256), False),  # too large for the caches
        (_conv(128, 128), (1, 128, 64, 64), True),  # conv2_2 at 128 px
        (_conv(64, 64), (1, 64, 64, 64), False),  # too few channels
        (_conv(64, 128), (1, 64, 64, 64), False),
        (_conv(256, 256, stride=2), (1, 256, 32, 32), False),
        (_conv(256, 256, groups=256), (1, 256, 32, 32), False),
        (_conv(256, 256, dilation=2, padding=2), (1, 256, 32, 32), False),
        (_conv(256, 256, k=1, padding=0), (1, 256, 32, 32), False),
        (_conv(256, 256, padding_mode="reflect"), (1, 256, 32, 32), False),
    ],
)
def test_rules(conv, shape, expected):
    assert _winograd.plan(conv, torch.zeros(shape)) is expected


def test_rules_float32_cpu_only():
    conv = _conv(256, 256)
    x = torch.zeros(1, 256, 32, 32)
    assert _winograd.plan(conv, x)
    assert not _winograd.plan(conv, x.double())
    assert not _winograd.plan(conv.double(), x.double())


def _spy(monkeypatch):
    calls = []
    real = _winograd.conv3x3_frozen

    def spy(x, u, bias):
        calls.append((x.shape[1], u.shape[1], x.shape[-1]))  # C_in, C_out, px
        return real(x, u, bias)

    monkeypatch.setattr(_winograd, "conv3x3_frozen", spy)
    return calls


def test_vgg19_fast_path_uses_winograd_only_when_asked_and_where_the_rules_say(vgg_random, monkeypatch):
    calls = _spy(monkeypatch)
    image = torch.rand(1, 3, 128, 128)
    layers = ["conv4_2", "conv5_1"]
    plain = vgg_random.features(image, layers)
    fast_features(vgg_random, image, layers, WeightCache())
    assert calls == []  # the default: every convolution computed directly
    fast = fast_features(vgg_random, image, layers, WeightCache(), winograd=True)
    # conv2_2 (64 px), conv3_1..conv3_4 (32 px) and conv4_1..conv4_4 (16 px: 16 tiles);
    # not conv1_x, conv2_1 (64 channels in), not conv5_1 (512 ch at 8 px: 4 tiles)
    assert calls == [
        (128, 128, 64),
        (128, 256, 32),
        (256, 256, 32),
        (256, 256, 32),
        (256, 256, 32),
        (256, 512, 16),
        (512, 512, 16),
        (512, 512, 16),
        (512, 512, 16),
    ]
    for name in layers:
        assert _rel(fast[name], plain[name].double()) < 1e-4, name


def test_winograd_weights_follow_parameter_changes():
    bb = load_backbone("vgg19", weights="random", device="cpu")
    image = torch.rand(1, 3, 128, 128)
    cache = WeightCache()
    fast_features(bb, image, ["conv3_2"], cache, winograd=True)
    assert "winograd" in cache.kinds()
    with torch.no_grad():
        bb.layers["conv3_2"].weight.mul_(-2.0)
    fast = fast_features(bb, image, ["conv3_2"], cache, winograd=True)["conv3_2"]
    plain = bb.features(image, ["conv3_2"])["conv3_2"]
    assert _rel(fast, plain.double()) < 1e-4


def test_objective_with_winograd_is_the_same_function(vgg_random, monkeypatch, default_objective_kw):
    C = samples.load("chelsea", max_size=128)
    S = samples.load("swirls", max_size=128)
    H, W = C.shape[-2:]
    kw = default_objective_kw(vgg_random, (H, W))
    calls = _spy(monkeypatch)
    terms = {}
    for winograd in (False, True):
        obj = StyleTransferObjective(vgg_random, C, S, winograd=winograd, **kw)
        G = initial_image("noise", C, (H, W), seed=0).requires_grad_(True)
        out = obj(G)
        out["J"].backward()
        terms[winograd] = ({k: v.item() for k, v in out.items()}, G.grad)
        assert bool(calls) is winograd
    (t0, g0), (t1, g1) = terms[False], terms[True]
    for k in ("J", "J_content", "J_style"):
        assert t1[k] == pytest.approx(t0[k], rel=1e-4), k
    # ReLU and max-pooling decisions near ties may flip under ~1e-5 perturbations, so
    # the pixel gradient agrees to ~1e-3, not 1e-5
    assert float((g1 - g0).norm() / g0.norm()) < 1e-2


def test_style_transfer_winograd_flag(vgg_random):
    C = samples.load("chelsea", max_size=48)
    S = samples.load("swirls", max_size=48)
    runs = [style_transfer(C, S, backbone=vgg_random, steps=3, progress=False, winograd=w) for w in (False, True)]
    assert [r.settings["winograd"] for r in runs] == [False, True]
    assert runs[1].history[0]["J"] == pytest.approx(runs[0].history[0]["J"], rel=1e-4)
    with pytest.raises(InputError, match="winograd must be True, False or None"):
        style_transfer(C, S, backbone=vgg_random, steps=1, progress=False, winograd="yes")
