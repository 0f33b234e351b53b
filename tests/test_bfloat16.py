"""bfloat16 in the fast path: the network in bfloat16, the costs and the gradient in float32.

``fast_features(..., bfloat16=True)`` must give the float32 activations to bfloat16's
rounding (8 bits of mantissa: about 0.4% per number), as float32 tensors; the objective
built with it must be the same function to that rounding, with a gradient pointing the
same way; ``style_transfer`` must turn it on by default exactly where
``bfloat16_pays`` says, record what it did, and refuse what cannot be done. How much
faster it is, and how close a whole run ends, is measured by
benchmarks/bench_time_to_image.py, not here.
"""

import re
from pathlib import Path

import pytest
import torch

import course_nst._fast as fast
import course_nst.transfer as transfer
from course_nst import InputError, load_backbone, samples, style_transfer
from course_nst._fast import WeightCache, bfloat16_pays, fast_features, native_bfloat16
from course_nst.transfer import StyleTransferObjective, initial_image


def _layers(bb):
    return list(dict.fromkeys([bb.content_layer, *bb.style_layers]))


def _rel(a, b):
    return float((a - b).norm() / b.norm())


@pytest.fixture(scope="module")
def image():
    return samples.load("chelsea", max_size=64)


@pytest.mark.parametrize("which", ["vgg_random", "vgg_original", "lite0"])
def test_bfloat16_features_are_float32_and_close(request, which, image):
    bb = request.getfixturevalue(which)
    layers = _layers(bb)
    plain = bb.features(image, layers)
    cache = WeightCache()
    low = fast_features(bb, image, layers, cache, bfloat16=True)
    assert any("bfloat16" in kind for kind in cache.kinds())  # the weights were cast once, and kept
    for name in layers:
        assert low[name].dtype == torch.float32, name
        assert low[name].shape == plain[name].shape, name
        assert low[name].is_contiguous(memory_format=torch.channels_last), name
        err = _rel(low[name], plain[name])
        # bfloat16 does round: not equal, but within a few of its steps through the layers
        assert 1e-5 < err < 5e-2, (name, err)


def test_bfloat16_weights_follow_parameter_changes(image):
    bb = load_backbone("vgg19", weights="random", device="cpu")
    cache = WeightCache()
    before = fast_features(bb, image, ["conv2_1"], cache, bfloat16=True)["conv2_1"]
    with torch.no_grad():
        bb.layers["conv2_1"].weight.mul_(-2.0)
    after = fast_features(bb, image, ["conv2_1"], cache, bfloat16=True)["conv2_1"]
    plain = bb.features(image, ["conv2_1"])["conv2_1"]
    assert _rel(after, plain) < 2e-2
    assert _rel(before, plain) > 1.0  # the old copy would be far off


def test_objective_in_bfloat16_is_the_same_function(vgg_original, default_objective_kw):
    C = samples.load("chelsea", max_size=96)
    S = samples.load("swirls", max_size=96)
    H, W = C.shape[-2:]
    kw = default_objective_kw(vgg_original, (H, W))
    terms = {}
    for low in (False, True):
        obj = StyleTransferObjective(vgg_original, C, S, bfloat16=low, **kw)
        G = initial_image("noise", C, (H, W), seed=0).requires_grad_(True)
        out = obj(G)
        out["J"].backward()
        assert G.grad is not None and G.grad.dtype == torch.float32
        terms[low] = ({k: v.item() for k, v in out.items()}, G.grad)
    (t32, g32), (t16, g16) = terms[False], terms[True]
    for k in ("J", "J_content", "J_style"):
        assert t16[k] == pytest.approx(t32[k], rel=2e-2), k
    cosine = float((g16 * g32).sum() / (g16.norm() * g32.norm()))
    assert cosine > 0.99


def test_native_bfloat16_matches_the_cpu_flags():
    flags = Path("/proc/cpuinfo")
    if not flags.exists():
        pytest.skip("no /proc/cpuinfo to compare with")
    words = set(re.findall(r"\w+", flags.read_text()))
    assert native_bfloat16() is bool({"avx512_bf16", "amx_bf16", "amx_tile"} & words)


def test_bfloat16_pays_for_dense_networks_on_a_cpu_that_has_it(vgg_random, lite0, monkeypatch):
    monkeypatch.setattr(fast, "native_bfloat16", lambda: True)
    assert bfloat16_pays(vgg_random)
    assert not bfloat16_pays(lite0)  # depthwise convolutions: slower in bfloat16
    monkeypatch.setattr(fast, "native_bfloat16", lambda: False)
    assert not bfloat16_pays(vgg_random)  # emulated bfloat16 is slower than float32


@pytest.mark.parametrize("pays", [True, False])
def test_style_transfer_default_follows_bfloat16_pays(vgg_random, monkeypatch, pays):
    monkeypatch.setattr(transfer, "bfloat16_pays", lambda backbone: pays)
    C = samples.load("chelsea", max_size=48)
    S = samples.load("swirls", max_size=48)
    r = style_transfer(C, S, backbone=vgg_random, steps=2, progress=False)
    # Winograd (float32 only) is the default on a CPU where bfloat16 is not
    assert (r.settings["bfloat16"], r.settings["winograd"]) == (pays, not pays)
    r = style_transfer(C, S, backbone=vgg_random, steps=2, progress=False, bfloat16=False)
    assert (r.settings["bfloat16"], r.settings["winograd"]) == (False, True)
    r = style_transfer(C, S, backbone=vgg_random, steps=2, progress=False, winograd=True)
    assert (r.settings["bfloat16"], r.settings["winograd"]) == (False, True)


def test_style_transfer_bfloat16_runs_close_and_repeat_bit_for_bit(vgg_random):
    C = samples.load("chelsea", max_size=48)
    S = samples.load("swirls", max_size=48)
    runs = [style_transfer(C, S, backbone=vgg_random, steps=4, progress=False, bfloat16=b) for b in (False, True, True)]
    assert [r.settings["bfloat16"] for r in runs] == [False, True, True]
    assert runs[1].history[0]["J"] == pytest.approx(runs[0].history[0]["J"], rel=2e-2)
    assert runs[1].history[0]["J"] != runs[0].history[0]["J"]  # it did compute in bfloat16
    assert torch.equal(runs[1].image, runs[2].image)


def test_style_transfer_refuses_bad_bfloat16(vgg_random):
    C = samples.load("chelsea", max_size=48)
    with pytest.raises(InputError, match="bfloat16 must be True, False or None"):
        style_transfer(C, C, backbone=vgg_random, steps=1, progress=False, bfloat16="yes")
    with pytest.raises(InputError, match="cannot be combined with bfloat16=True"):
        style_transfer(C, C, backbone=vgg_random, steps=1, progress=False, bfloat16=True, winograd=True)


@pytest.mark.parametrize("pays", [True, False])
def test_fast_path_settings_say_what_style_transfer_does(vgg_random, monkeypatch, pays):
    monkeypatch.setattr(transfer, "bfloat16_pays", lambda backbone: pays)
    small, large = (
        transfer.fast_path_settings(vgg_random, (32, 48)),
        transfer.fast_path_settings(vgg_random, (400, 600)),
    )
    assert small == {"winograd": not pays, "bfloat16": pays}
    assert large == {"winograd": False, "bfloat16": pays}  # Winograd's default stops at 384 px
    C = samples.load("chelsea", max_size=48)
    r = style_transfer(C, C, backbone=vgg_random, steps=1, progress=False)
    assert {k: r.settings[k] for k in small} == small
    with pytest.raises(InputError, match="cannot be combined"):
        transfer.fast_path_settings(vgg_random, (32, 48), winograd=True, bfloat16=True)
