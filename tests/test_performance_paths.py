"""The fast path of the style-transfer loop computes what the plain path computes.

``course_nst._fast.fast_features`` (channels_last tensors, cached channels_last weights,
BatchNorm folded into the convolutions, ReLUs in place where nobody asked for their
input; Winograd 3x3 convolutions for VGG19's wide layers: tests/test_winograd.py;
bfloat16: tests/test_bfloat16.py)
and the channels_last branch of ``costs.gram_matrix`` are optimisations only: same
activations, same costs, same gradients, to float32 rounding. No timing here; see
benchmarks/bench_transfer.py.
"""

import pytest
import torch

from course_nst import costs, load_backbone, samples
from course_nst._fast import WeightCache, fast_features
from course_nst.transfer import StyleTransferObjective, initial_image


@pytest.fixture(scope="module")
def image():
    return samples.load("chelsea", max_size=64)


def _all_default_layers(bb):
    return list(dict.fromkeys([bb.content_layer, *bb.style_layers]))


def _close(a, b, rtol=1e-4):
    scale = b.abs().max().clamp_min(1e-12)
    return bool(((a - b).abs().max() / scale) < rtol)


@pytest.mark.parametrize("which", ["lite0", "vgg_random"])
def test_fast_features_equal_plain_features(request, which, image):
    bb = request.getfixturevalue(which)
    layers = _all_default_layers(bb) + [bb.layer_names[1]]
    before = image.clone()
    plain = bb.features(image, layers)
    fast = fast_features(bb, image, layers, WeightCache())
    assert torch.equal(image, before)  # the caller's image is never written to
    assert set(fast) == set(plain)
    for name in plain:
        assert fast[name].shape == plain[name].shape
        assert fast[name].is_contiguous(memory_format=torch.channels_last)
        assert _close(fast[name], plain[name]), name


def test_in_place_relu_keeps_requested_conv_outputs(vgg_random, image):
    # conv1_1 is followed by relu1_1: asking for it must keep its negative values
    layers = ["conv1_1", "conv1_2", "relu1_2", "conv2_1"]
    plain = vgg_random.features(image, layers)
    fast = fast_features(vgg_random, image, layers, WeightCache())
    assert (plain["conv1_1"] < 0).any()
    for name in layers:
        assert _close(fast[name], plain[name]), name


def test_public_features_stay_plain_nchw(vgg_random, image):
    # students write a.view(n_C, -1): the public path must keep contiguous NCHW tensors
    a = vgg_random.features(image, ["conv2_1"])["conv2_1"]
    assert a.is_contiguous()
    a.view(a.shape[1], -1)


@pytest.mark.parametrize("which", ["lite0", "vgg_random"])
def test_fast_features_gradients_equal_plain(request, which, image):
    bb = request.getfixturevalue(which)
    layers = _all_default_layers(bb)
    gen = torch.Generator().manual_seed(0)
    grads = []
    for fast in (False, True):
        G = image.clone().requires_grad_(True)
        acts = fast_features(bb, G, layers, WeightCache()) if fast else bb.features(G, layers)
        gen.manual_seed(0)
        total = sum((acts[n] * torch.randn(acts[n].shape, generator=gen)).sum() for n in layers)
        total.backward()
        grads.append(G.grad)
    assert _close(grads[1], grads[0], rtol=1e-3)
    assert all(p.grad is None for p in bb.parameters())  # frozen: no weight gradients


def test_gram_matrix_channels_last_equals_contiguous():
    a = torch.randn(1, 16, 7, 5, dtype=torch.float64)
    a_cl = a.contiguous(memory_format=torch.channels_last)
    assert not a_cl.is_contiguous()
    assert torch.allclose(costs.gram_matrix(a_cl), costs.gram_matrix(a))
    g = torch.randn(16, 16, dtype=torch.float64)
    x1 = a.clone().requires_grad_(True)
    x2 = a_cl.clone().requires_grad_(True)
    (costs.gram_matrix(x1) * g).sum().backward()
    (costs.gram_matrix(x2) * g).sum().backward()
    assert torch.allclose(x1.grad, x2.grad)


def test_weight_cache_follows_parameter_changes(image):
    vgg = load_backbone("vgg19", weights="random", device="cpu")
    lite0 = load_backbone("efficientnet_lite0", device="cpu")
    for bb, changes in (
        (vgg, [vgg.layers["conv1_1"].weight, vgg.layers["conv1_2"].bias]),
        (lite0, [lite0.layers["stem"][1].running_var, lite0.layers["block2_1"].project[0].weight]),
    ):
        layers = _all_default_layers(bb)
        cache = WeightCache()
        fast_features(bb, image, layers, cache)
        assert cache
        with torch.no_grad():
            for t in changes:
                t.mul_(1.5)
        fast = fast_features(bb, image, layers, cache)
        plain = bb.features(image, layers)
        for name in layers:
            assert _close(fast[name], plain[name]), (bb.name, name)


@pytest.mark.parametrize("which", ["lite0", "vgg_random"])
def test_objective_equals_the_lecture_costs_on_plain_features(request, which):
    bb = request.getfixturevalue(which)
    C = samples.load("chelsea", max_size=64)
    S = samples.load("swirls", max_size=64)
    H, W = C.shape[-2:]
    obj = StyleTransferObjective(
        bb,
        C,
        S,
        content_layer=bb.content_layer,
        style_layers=bb.style_layers,
        alpha=bb.alpha,
        beta=bb.beta,
        tv_weight=bb.tv_weight,
        out_shape=(H, W),
    )
    G = initial_image("noise", C, (H, W), seed=0).requires_grad_(True)
    terms = obj(G)
    terms["J"].backward()

    G2 = G.detach().clone().requires_grad_(True)
    S_resized = S  # same long side as C here
    a_C = bb.features(C, [bb.content_layer])[bb.content_layer]
    acts_S = bb.features(S_resized, list(bb.style_layers))
    acts_G = bb.features(G2, _all_default_layers(bb))
    J_content = costs.content_cost(a_C, acts_G[bb.content_layer])
    J_style = costs.style_cost(acts_S, acts_G, bb.style_layers)
    J = costs.total_cost(J_content, J_style, bb.alpha, bb.beta) + bb.tv_weight * costs.total_variation(G2)
    J.backward()
    assert terms["J_content"].item() == pytest.approx(J_content.item(), rel=1e-4)
    assert terms["J_style"].item() == pytest.approx(J_style.item(), rel=1e-4)
    assert terms["J"].item() == pytest.approx(J.item(), rel=1e-4)
    assert _close(G.grad, G2.grad, rtol=1e-3)


def test_unfrozen_backbone_still_gets_weight_gradients(image):
    bb = load_backbone("efficientnet_lite0", device="cpu")
    bb.requires_grad_(True)
    acts = fast_features(bb, image, ["block2_2"], WeightCache())
    acts["block2_2"].sum().backward()
    assert bb.layers["stem"][0].weight.grad is not None
    assert bb.layers["block2_2"].project[1].weight.grad is not None
