"""The controls of style_transfer (colour, several styles, regions, scale), measured on the output.

Plus the maths of course_nst.controls and the bad-input errors of the API and the CLI.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from course_nst import InputError, costs, samples, style_transfer
from course_nst import controls as ctl

ROOT = Path(__file__).resolve().parents[1]
SIZE = 64


@pytest.fixture(scope="module")
def photo():
    return samples.load("chelsea", max_size=SIZE)


def _run(backbone, content, style, **kw):
    kw = {"steps": 40, "progress": False, "init": "noise", "seed": 0, **kw}
    return style_transfer(content, style, backbone=backbone, **kw)


def _mean_colour(image: torch.Tensor) -> torch.Tensor:
    return image.reshape(3, -1).mean(dim=1)


# --------------------------------------------------------------------------- the maths


def test_yiq_round_trip_and_luminance_of_gray():
    x = torch.rand(1, 3, 7, 5, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(ctl.yiq_to_rgb(ctl.rgb_to_yiq(x)), x, atol=1e-6)
    gray = torch.full((1, 3, 2, 2), 0.4)
    yiq = ctl.rgb_to_yiq(gray)
    assert torch.allclose(yiq[:, 0], torch.full((1, 2, 2), 0.4), atol=1e-6)  # Y of a gray is its value
    assert yiq[:, 1:].abs().max() < 1e-5  # and it has no colour


def test_match_luminance_gives_the_content_mean_and_std():
    g = torch.Generator().manual_seed(1)
    lum_S, lum_C = torch.rand(1, 1, 9, 9, generator=g) * 0.3, torch.rand(1, 1, 5, 6, generator=g) * 0.8 + 0.1
    out = ctl.match_luminance(lum_S, lum_C)
    assert out.mean() == pytest.approx(float(lum_C.mean()), abs=1e-5)
    assert out.std(unbiased=False) == pytest.approx(float(lum_C.std(unbiased=False)), rel=1e-4)


def test_histogram_matching_gives_the_target_mean_and_covariance():
    source = samples.load("swirls", max_size=32)
    target = samples.load("chelsea", max_size=40)
    out = ctl.match_colour_histogram(source, target)
    mu, cov = ctl.colour_mean_cov(out)
    mu_C, cov_C = ctl.colour_mean_cov(target)
    assert torch.allclose(mu, mu_C, atol=1e-5)
    assert torch.allclose(cov, cov_C, atol=2e-4 * float(cov_C.abs().max()))
    # and it is not the identity: the source's own statistics were different
    assert not torch.allclose(ctl.colour_mean_cov(source)[1], cov_C, atol=1e-3)


def test_guided_gram_with_an_all_ones_mask_is_the_gram_matrix():
    a = torch.randn(1, 4, 6, 5, generator=torch.Generator().manual_seed(2))
    ones = torch.ones(1, 1, 24, 20)  # image size: downsampled to the layer's 6x5
    assert torch.allclose(ctl.guided_gram_matrix(a, ones), costs.gram_matrix(a), rtol=1e-5, atol=1e-5)


def test_guided_gram_of_a_binary_mask_counts_only_its_positions():
    a = torch.randn(1, 3, 4, 4, generator=torch.Generator().manual_seed(3))
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., :4, :] = 1  # top half of the image = top two rows of the layer
    want = costs.gram_matrix(a[:, :, :2, :].contiguous())
    assert torch.allclose(ctl.guided_gram_matrix(a, mask), want, rtol=1e-5, atol=1e-5)
    # a soft mask of 0.5 everywhere weighs every position by 0.5^2
    half = torch.full((1, 1, 8, 8), 0.5)
    assert torch.allclose(ctl.guided_gram_matrix(a, half), 0.25 * costs.gram_matrix(a), rtol=1e-5, atol=1e-5)


def test_layer_mask_averages_areas():
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., :, :1] = 1  # first column
    m = ctl.layer_mask(mask, (2, 2))
    assert torch.allclose(m, torch.tensor([[[[0.5, 0.0], [0.5, 0.0]]]]))


def test_style_weight_checks():
    assert ctl.check_style_weights(None, 4) == [0.25] * 4
    assert ctl.check_style_weights([3, 1], 2) == [0.75, 0.25]
    for bad, words in [([1], "1 style weight"), ([1, -1], ">= 0"), ([0, 0], "all 0"), ("ab", "list")]:
        with pytest.raises(InputError, match=words):
            ctl.check_style_weights(bad, 2)


def test_mask_checks():
    good = torch.ones(1, 1, 10, 12)
    assert ctl.check_masks([good], 1, (10, 12), (5, 6))[0].shape == (1, 1, 5, 6)
    assert ctl.check_masks([torch.ones(5, 6)], 1, (10, 12), (5, 6))[0].shape == (1, 1, 5, 6)
    cases = [
        ([good, good], "2 mask"),
        ([torch.ones(1, 1, 9, 12)], "content image's size"),
        ([good * 2], r"\[0, 1\]"),
        ([torch.zeros(1, 1, 10, 12)], "0 everywhere"),
        ([torch.ones(1, 3, 10, 12)], "shape"),
        (good, "list"),
    ]
    for masks, words in cases:
        with pytest.raises(InputError, match=words):
            ctl.check_masks(masks, 1, (10, 12), (5, 6))


# --------------------------------------------------------------------------- the controls, on the output


def test_luminance_keeps_the_content_colours_and_changes_the_luminance(lite0, photo):
    r = _run(lite0, photo, samples.load("swirls", max_size=SIZE), colour="luminance")
    yiq_G, yiq_C = ctl.rgb_to_yiq(r.image), ctl.rgb_to_yiq(photo)
    colour_diff = float((yiq_G[:, 1:] - yiq_C[:, 1:]).abs().mean())
    lum_diff = float((yiq_G[:, 0] - yiq_C[:, 0]).abs().mean())
    assert colour_diff < 0.01, colour_diff  # only clamping to [0, 1] may move I, Q a little
    assert lum_diff > 0.03, lum_diff  # the style changed the luminance
    assert r.settings["colour"] == "luminance"


def test_histogram_matching_brings_the_mean_colour_closer_to_the_content(lite0, photo):
    style = samples.load("swirls", max_size=SIZE)  # blue and yellow; the cat is brown
    plain = _run(lite0, photo, style)
    matched = _run(lite0, photo, style, colour="histogram")
    target = _mean_colour(photo)
    d_plain = float((_mean_colour(plain.image) - target).norm())
    d_matched = float((_mean_colour(matched.image) - target).norm())
    assert d_matched < 0.5 * d_plain, (d_matched, d_plain)


def test_two_styles_in_two_halves(lite0, photo):
    blue, warm = samples.load("swirls", max_size=SIZE), samples.load("shapes", max_size=SIZE)
    H, W = photo.shape[-2:]
    left = torch.zeros(1, 1, H, W)
    left[..., : W // 2] = 1
    r = _run(lite0, photo, [blue, warm], masks=[left, 1 - left], steps=60)
    halves = {"left": r.image[..., : W // 2 - 2], "right": r.image[..., W // 2 + 2 :]}
    own = {"left": _mean_colour(blue), "right": _mean_colour(warm)}
    other = {"left": _mean_colour(warm), "right": _mean_colour(blue)}
    for side, part in halves.items():
        m = _mean_colour(part)
        assert (m - own[side]).norm() < (m - other[side]).norm(), side
    assert r.settings["masks"] == 2 and r.settings["styles"] == 2


def test_style_weights_one_zero_is_the_single_style_result(lite0, photo):
    s1, s2 = samples.load("swirls", max_size=SIZE), samples.load("shapes", max_size=SIZE)
    single = _run(lite0, photo, s1, steps=10)
    blend = _run(lite0, photo, [s1, s2], style_weights=[1, 0], steps=10)
    assert torch.equal(single.image, blend.image)
    even = _run(lite0, photo, [s1, s2], steps=10)
    assert not torch.equal(single.image, even.image)
    assert even.settings["style_weights"] == [0.5, 0.5]


def test_high_frequency_share_of_a_checkerboard_and_of_a_ramp():
    yy, xx = torch.meshgrid(torch.arange(32), torch.arange(32), indexing="ij")
    checker = ((yy + xx) % 2).float().expand(1, 3, 32, 32)  # all power at the highest frequency
    ramp = torch.sin(2 * torch.pi * xx / 32).float().expand(1, 3, 32, 32) * 0.5 + 0.5  # one slow wave
    assert ctl.high_frequency_share(checker) > 0.99
    assert ctl.high_frequency_share(ramp) < 0.01
    assert ctl.high_frequency_share(torch.full((1, 3, 8, 8), 0.3)) == 0.0  # flat: no power at all


def _spots(size: int = 128) -> torch.Tensor:
    """A style of random spots about 6 px across (thresholded blurred noise), in two colours."""
    noise = torch.randn(1, 1, size, size, generator=torch.Generator().manual_seed(0))
    k = torch.exp(-(torch.arange(-8, 9.0) ** 2) / (2 * 3.0**2))
    k = k / k.sum()
    padded = torch.nn.functional.pad(noise, (8, 8, 8, 8), mode="circular")
    blur = torch.nn.functional.conv2d(torch.nn.functional.conv2d(padded, k.view(1, 1, 1, -1)), k.view(1, 1, -1, 1))
    spots = (blur > 0).float()
    return torch.cat([spots, 0.2 + 0.6 * spots, 1 - spots], 1)


def test_larger_style_scale_gives_larger_strokes(lite0):
    # style_scale is the style image's size relative to G's: a larger one has larger spots,
    # and G takes them (fewer high frequencies); notebook 05 shows it with VGG19
    # a smooth start (no white-noise speckle left over to blur the measurement)
    init = torch.nn.functional.interpolate(
        torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(1)), size=(SIZE, SIZE), mode="bilinear"
    )
    shares = {}
    for scale in (0.5, 2.0):
        r = _run(lite0, None, _spots(), size=SIZE, style_scale=scale, steps=60, init=init)
        shares[scale] = ctl.high_frequency_share(r.image)
        assert r.settings["style_scale"] == scale
    assert shares[2.0] < 0.75 * shares[0.5], shares


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(colour="sepia"), "colour must be"),
        (dict(style_scale=-1), "style_scale must be"),
        (dict(style_scale=0.01), "use a larger scale"),
        (dict(style_weights=[1, 2]), "2 style weight"),
        (dict(masks=[torch.ones(1, 1, 5, 5)]), "content image's size"),
        (dict(masks=[torch.ones(1, 1, 48, 64)] * 2), "2 mask"),
    ],
)
def test_bad_control_arguments(lite0, photo, kwargs, words):
    with pytest.raises(InputError, match=words):
        _run(lite0, photo, samples.load("swirls", max_size=SIZE), steps=1, **kwargs)


def test_colour_needs_content(lite0):
    with pytest.raises(InputError, match="needs a content image"):
        _run(lite0, None, samples.load("swirls", max_size=SIZE), size=32, steps=1, colour="histogram")


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "course_nst", *args], capture_output=True, text=True, cwd=ROOT, timeout=300
    )


def test_cli_bad_controls_one_line_exit_2(tmp_path, capsys):
    from course_nst.cli import main

    small = tmp_path / "mask_small.png"
    Image.fromarray(np.full((10, 10), 255, dtype=np.uint8)).save(small)
    out = tmp_path / "out.png"
    base = ["stylize", "chelsea", "swirls", "-o", str(out), "--steps", "1", "--size", "64", "-q"]
    base += ["--backbone", "efficientnet_lite0"]
    cases = [
        (base + ["--style-weights", "1", "2"], "--style-weights got 2"),
        (base + ["--mask", str(small), str(small)], "--mask got 2"),
        (base + ["--style-scale", "-1"], "must be a finite number >= 0"),
        (base + ["--colour", "sepia"], "invalid choice"),
        (base + ["--mask", str(small)], "content image's size"),
    ]
    for argv, words in cases:  # in this process: main() is what the console script runs
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        lines = err.strip().splitlines()  # at most a "backbone: ..." line before the error
        assert lines and lines[-1].startswith("error:") and words in lines[-1], (argv, err)
        assert len(lines) <= 2 and "Traceback" not in err, err
        assert not out.exists()
    # and once as its own process, as a user runs it: the exit status and stderr of the real command
    proc = _cli(*cases[-1][0])
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error:") and "Traceback" not in proc.stderr
    assert not out.exists()


def test_cli_two_styles_with_masks_and_colour(tmp_path):
    from course_nst.cli import main

    content = samples.load("chelsea", max_size=48)
    H, W = content.shape[-2:]
    top = np.zeros((H, W), dtype=np.uint8)
    top[: H // 2] = 255
    paths = [tmp_path / "top.png", tmp_path / "bottom.png"]
    Image.fromarray(top).save(paths[0])
    Image.fromarray(255 - top).save(paths[1])
    photo = tmp_path / "photo.png"
    Image.fromarray((content[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(photo)
    out = tmp_path / "out.png"
    code = main(
        [
            "stylize",
            str(photo),
            "swirls",
            "shapes",
            "-o",
            str(out),
            "--steps",
            "2",
            "-q",
            "--size",
            "48",
            "--backbone",
            "efficientnet_lite0",
            "--mask",
            *map(str, paths),
            "--colour",
            "histogram",
            "--style-weights",
            "1",
            "3",
            "--style-scale",
            "1.5",
        ]
    )
    assert code == 0 and out.is_file()
