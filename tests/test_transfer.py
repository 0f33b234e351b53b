"""End-to-end style transfer: it lowers J, is reproducible, and never loses work."""

import pytest
import torch

from course_nst import InputError, NonFiniteCostError, costs, samples, style_transfer
from course_nst.transfer import initial_image


@pytest.fixture(scope="module")
def pair():
    return samples.load("chelsea", max_size=64), samples.load("swirls", max_size=96)


@pytest.mark.parametrize("which", ["lite0", "vgg_random", "vgg_original"])
def test_noise_start_lowers_J_tenfold_and_is_reproducible(request, which, pair):
    backbone = request.getfixturevalue(which)
    content, style = pair
    kwargs = dict(backbone=backbone, steps=80, progress=False, seed=3, tol=0)
    if which == "lite0":
        # its default beta at 64 px (a 16th of the 256 px one) leaves mostly the content term, which
        # its stride-2 first layer lowers slowly from white noise (6.5x in 80 evaluations); the
        # machinery is tested at its 256 px balance. VGG19's defaults are tested as they are.
        kwargs["beta"] = backbone.beta
    first = style_transfer(content, style, **kwargs)
    assert first.image.shape == content.shape
    assert first.image.min() >= 0 and first.image.max() <= 1
    assert len(first.history) == 80
    assert first.final["J"] <= first.history[0]["J"] / 10
    again = style_transfer(content, style, **kwargs)
    assert torch.equal(first.image, again.image)
    other_seed = style_transfer(content, style, **{**kwargs, "seed": 4, "steps": 2})
    assert not torch.equal(other_seed.history[0]["J"] * torch.ones(1), first.history[0]["J"] * torch.ones(1))


def test_history_records_the_lecture_costs(lite0, pair):
    content, style = pair
    r = style_transfer(content, style, backbone=lite0, steps=3, progress=False, tv_weight=0.0, alpha=2.0, beta=5.0)
    for rec in r.history:
        assert set(rec) == {"step", "scale", "J", "J_content", "J_style", "J_tv"}
        assert rec["J"] == pytest.approx(2.0 * rec["J_content"] + 5.0 * rec["J_style"], rel=1e-5)
    # the first record is the cost of the initial white noise, computed independently here
    G0 = initial_image("noise", content, tuple(content.shape[-2:]), seed=0)
    a = lite0.features(G0, [lite0.content_layer])[lite0.content_layer]
    a_C = lite0.features(content, [lite0.content_layer])[lite0.content_layer]
    assert r.history[0]["J_content"] == pytest.approx(costs.content_cost(a_C, a).item(), rel=1e-4)


def test_style_of_another_size_and_aspect(lite0):
    content = samples.load("rocket", max_size=64)  # landscape
    style = samples.load("waves", max_size=80)[:, :, :, :40]  # portrait strip
    r = style_transfer(content, style, backbone=lite0, steps=5, progress=False)
    assert r.image.shape == content.shape


def test_callback_sees_images_and_can_stop(lite0, pair):
    seen = []

    def cb(step, image, record):
        seen.append((step, image.shape, record["J"]))
        return step == 4

    r = style_transfer(*pair, backbone=lite0, steps=50, progress=False, callback=cb)
    assert r.stopped == "callback" and len(r.history) == 4
    assert [s for s, _, _ in seen] == [1, 2, 3, 4]
    assert seen[0][1] == pair[0].shape


def test_ctrl_c_returns_the_best_image_so_far(lite0, pair):
    def cb(step, image, record):
        if step == 6:
            raise KeyboardInterrupt

    r = style_transfer(*pair, backbone=lite0, steps=50, progress=False, callback=cb)
    assert r.stopped == "interrupted"
    assert len(r.history) == 6
    assert r.final["J"] == min(r.curve("J"))
    assert r.final["J"] < r.history[0]["J"]
    assert not torch.equal(r.image, initial_image("noise", None, tuple(pair[0].shape[-2:]), seed=0))


def test_non_finite_cost_stops_with_a_clear_error_and_keeps_the_image(lite0, pair, monkeypatch):
    calls = {"n": 0}
    real_tv = costs.total_variation

    def tv_that_breaks(image):
        calls["n"] += 1
        # the first call is the start image's J (the "before"), then one per evaluation
        return real_tv(image) * (float("nan") if calls["n"] >= 5 else 1.0)

    monkeypatch.setattr(costs, "total_variation", tv_that_breaks)
    with pytest.raises(NonFiniteCostError, match="the cost became nan at evaluation 4") as info:
        style_transfer(*pair, backbone=lite0, steps=10, tv_weight=1.0, progress=False)
    result = info.value.result
    assert result.stopped == "non-finite" and len(result.history) == 3
    assert torch.isfinite(result.image).all() and result.image.shape == pair[0].shape


def test_inits(lite0, pair):
    content, style = pair
    shape = tuple(content.shape[-2:])
    noise = initial_image("noise", content, shape, seed=1)
    assert noise.shape == content.shape and 0.4 < noise.mean() < 0.6
    assert torch.equal(initial_image("content", content, shape), content)
    mixed = initial_image("content+noise", content, shape, seed=1)
    # the documented mix: 60% of the same white noise, 40% of the content, still an image in [0,1]
    assert torch.allclose(mixed, 0.6 * noise + 0.4 * content, atol=1e-6)
    assert mixed.min() >= 0 and mixed.max() <= 1
    r = style_transfer(content, style, backbone=lite0, steps=2, init="content", progress=False, optimizer="adam")
    assert r.history[0]["J_content"] == pytest.approx(0.0, abs=1e-3)


def test_content_only_and_style_only_reconstructions(lite0, pair):
    content, style = pair
    r = style_transfer(content, None, backbone=lite0, steps=10, progress=False, tv_weight=0)
    assert all(rec["J_style"] == 0 for rec in r.history) and r.final["J_content"] < r.history[0]["J_content"]
    r = style_transfer(None, style, backbone=lite0, size=48, steps=10, progress=False, tv_weight=0)
    assert r.image.shape[-2:] == (48, 48)
    assert all(rec["J_content"] == 0 for rec in r.history)


def test_sample_names_are_accepted(lite0):
    r = style_transfer("coffee", "pointillism", backbone=lite0, size=48, steps=2, progress=False)
    assert max(r.image.shape[-2:]) == 48


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"steps": 0}, "steps must be an integer > 0"),
        ({"size": -5}, "size must be an integer > 0"),
        ({"beta": -1.0}, "beta must be a number >= 0"),
        ({"optimizer": "sgd"}, "optimizer must be"),
        ({"init": "zeros"}, "unknown init"),
        ({"content_layer": "conv4_2"}, "unknown layer 'conv4_2'"),
        ({"style_layers": ["block2_2", "nope"]}, "unknown layer 'nope'"),
    ],
)
def test_bad_arguments(lite0, pair, kwargs, words):
    with pytest.raises(InputError) as info:
        style_transfer(*pair, backbone=lite0, progress=False, **{"steps": 2, **kwargs})
    assert words in str(info.value)


# -- the default balance at every size ---------------------------------------------------
def test_the_default_beta_grows_with_the_pixels_and_a_given_beta_is_kept(lite0, pair):
    content, style = pair  # 64 px
    run = dict(backbone=lite0, steps=2, scales=(1.0,), tol=0, progress=False)
    for size in (32, 64, 128):
        r = style_transfer(content, style, size=size, **run)
        assert r.settings["beta"] == pytest.approx(lite0.beta * (size / lite0.defaults.size) ** 2)
    assert style_transfer(content, style, beta=7.0, **run).settings["beta"] == 7.0
    assert lite0.beta_for((170, 256)) == lite0.beta


def test_the_default_balance_of_the_costs_is_the_same_at_twice_the_size(vgg_original):
    """alpha J_content : beta J_style for the same scene at 64 px and tiled 2 x 2 (128 px: the same
    statistics on four times the positions). J_content grows about 4x, J_style does not; the
    default beta grows with the pixels, so the balance stays; one fixed beta would move it 4x."""
    from course_nst.transfer import StyleTransferObjective

    C, S = samples.load("chelsea", max_size=64), samples.load("swirls", max_size=64)
    S = S[..., : C.shape[-2], : C.shape[-1]]
    G = initial_image("noise", C, tuple(C.shape[-2:]), seed=0)
    d = vgg_original.defaults

    def balance(C, S, G, beta):
        objective = StyleTransferObjective(
            vgg_original, C, S, content_layer=d.content_layer, style_layers=dict(d.style_layers),
            alpha=d.alpha, beta=beta, tv_weight=0.0, out_shape=tuple(C.shape[-2:]),
        )  # fmt: skip
        with torch.no_grad():
            terms = objective(G)
        return d.alpha * float(terms["J_content"]) / (beta * float(terms["J_style"]))

    def tile(x):
        return x.repeat(1, 1, 2, 2)

    small = balance(C, S, G, vgg_original.beta_for(tuple(C.shape[-2:])))
    large = balance(tile(C), tile(S), tile(G), vgg_original.beta_for(tuple(tile(C).shape[-2:])))
    fixed = balance(tile(C), tile(S), tile(G), vgg_original.beta_for(tuple(C.shape[-2:])))
    assert 0.67 < large / small < 1.5
    assert fixed / small > 3


# -- the schedule (coarse to fine), early stopping and the memory check -----------------
def test_default_schedule_grows_with_the_size():
    from course_nst.transfer import default_scales, stage_sizes

    assert default_scales(128) == (1.0,)
    assert default_scales(256) == (0.5, 1.0)
    assert default_scales(1024) == (0.25, 0.5, 1.0)
    assert stage_sizes((0.25, 0.5, 1.0), (120, 256)) == [(60, 128), (120, 256)]  # 30x64 is too small: skipped
    assert stage_sizes((0.5, 1.0), (512, 384)) == [(256, 192), (512, 384)]
    from course_nst.transfer import stage_steps

    assert stage_steps(300, 1) == [300]
    assert stage_steps(300, 2) == [200, 100]
    assert stage_steps(70, 3) == [40, 20, 10]
    assert stage_steps([5, 7], 2) == [5, 7]


def test_coarse_to_fine_records_each_stage_and_returns_the_full_size_best(lite0):
    content, style = samples.load("chelsea", max_size=96), samples.load("swirls", max_size=96)
    r = style_transfer(content, style, backbone=lite0, steps=[6, 4], scales=(0.5, 1.0), tol=0, progress=False)
    assert [rec["scale"] for rec in r.history] == [0.5] * 6 + [1.0] * 4
    assert r.image.shape == content.shape
    assert r.final == min(r.history[6:], key=lambda rec: rec["J"])
    assert r.settings["stages"] == ((32, 48), (64, 96))
    # "before" is measured at the final size, on the starting image upsampled
    assert r.start["J"] > r.final["J"]
    with pytest.raises(InputError, match="scales must rise to 1.0"):
        style_transfer(content, style, backbone=lite0, scales=(1.0, 0.5), progress=False)
    with pytest.raises(InputError, match="one per stage"):
        style_transfer(content, style, backbone=lite0, steps=[3], scales=(0.5, 1.0), progress=False)


def test_a_run_stops_when_J_stops_improving_and_says_so(lite0, pair):
    from course_nst.transfer import converged

    assert converged([10.0, 5.0, 4.999, 4.998], window=2, tol=1e-3)
    assert not converged([10.0, 5.0, 4.0, 3.0], window=2, tol=1e-3)
    assert not converged([10.0, 9.0], window=5, tol=1e-3)  # too early to tell
    r = style_transfer(*pair, backbone=lite0, steps=400, tol=0.05, window=10, progress=False)
    assert r.stopped == "converged" and 10 < len(r.history) < 400
    assert converged(r.curve("J"), 10, 0.05) and not converged(r.curve("J")[:-1], 10, 0.05)


def test_a_run_too_large_for_the_memory_is_refused_before_it_starts(lite0, monkeypatch):
    from course_nst import transfer

    monkeypatch.setattr(transfer, "available_memory", lambda device: 2e9)
    big = torch.rand(1, 3, 1200, 1600)
    with pytest.raises(
        InputError,
        match=r"needs about .* GB but only 2.0 GB is free on cpu; use a size of at most "
        r"about \d+ px",
    ) as e:
        style_transfer(big, big, backbone=lite0, progress=False)
    fits = int(str(e.value).rsplit("about ", 1)[1].split()[0])
    assert transfer.estimate_memory(lite0, (fits * 3 // 4, fits)) <= 2e9 < transfer.estimate_memory(lite0, (1200, 1600))


def test_a_huge_size_is_refused_before_anything_of_that_size_is_made(lite0, pair, monkeypatch):
    from course_nst import images, transfer

    made = []
    real = images.resize
    for module in (images, transfer):
        monkeypatch.setattr(module, "resize", lambda img, size: made.append(size) or real(img, size))
    with pytest.raises(InputError, match="use a size of at most about"):
        style_transfer(*pair, backbone=lite0, size=100_000, progress=False)
    assert made == []


def test_lbfgs_from_the_content_image_falls_at_once(vgg_original):
    # From a good start torch's own tiny first L-BFGS step used to leave the second step unscaled:
    # on VGG19 the cost went from 1e13 to inf (128 px), or with a line search never left its start.
    content, style = samples.load("chelsea", max_size=128), samples.load("swirls", max_size=128)
    r = style_transfer(content, style, backbone=vgg_original, steps=12, scales=(1.0,), init="content", progress=False)
    J = [h["J"] for h in r.history]
    assert len(J) == 12 and r.stopped is None
    assert max(J[1:]) < J[0] and J[-1] < J[0] / 3, J


def test_lbfgs_first_step_moves_the_most_changed_pixel_by_FIRST_STEP(vgg_original, pair):
    from course_nst.transfer import FIRST_STEP

    images = []
    content, style = pair
    style_transfer(
        content, style, backbone=vgg_original, steps=2, scales=(1.0,), init="content+noise", progress=False,
        callback=lambda step, image, record: images.append(image),
    )  # fmt: skip
    change = (images[1] - images[0]).abs()
    # the step's largest change is FIRST_STEP; clamping to [0, 1] can only shorten a pixel's change
    assert change.max() == pytest.approx(FIRST_STEP, rel=1e-3)


def test_no_lbfgs_step_overshoots_or_moves_a_pixel_more_than_MAX_STEP(vgg_original):
    from course_nst.transfer import MAX_STEP

    # measured before the cap: J jumped from 6.5e13 to 7e14 at the third evaluation and stayed above 4e13
    content, style = samples.load("chelsea", max_size=128), samples.load("stained_glass", max_size=256)
    images = []
    r = style_transfer(
        content, style, backbone=vgg_original, steps=30, init="content", style_scale=0.5, progress=False, tol=0,
        callback=lambda step, image, record: images.append(image),
    )  # fmt: skip
    J = [h["J"] for h in r.history]
    assert len(J) == 30 and max(J[1:]) < J[0] and min(J) < J[0] / 20, (J[0], max(J), min(J))
    steps = [float((b - a).abs().max()) for a, b in zip(images, images[1:], strict=False)]
    assert max(steps) <= MAX_STEP + 1e-6 and max(steps) > MAX_STEP / 2, steps
