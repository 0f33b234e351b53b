"""Tests for course_nst.samples: offline photos and generated style paintings."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from scipy import ndimage
from skimage.color import rgb2hsv

from course_nst import samples
from course_nst.errors import InputError

SMALL = 128  # keep the tests fast; the paintings are drawn at this size


def _array(name: str, size: int = SMALL) -> np.ndarray:
    return samples.load(name, max_size=size)[0].permute(1, 2, 0).numpy()


def _colour_histogram(image: np.ndarray) -> np.ndarray:
    """Fraction of pixels in each of 4x4x4 coarse RGB bins."""
    q = np.minimum((image * 4).astype(int), 3)
    codes = q[..., 0] * 16 + q[..., 1] * 4 + q[..., 2]
    return np.bincount(codes.ravel(), minlength=64) / codes.size


def _fine_texture(image: np.ndarray) -> float:
    """Std of a high-pass filtered gray image: strokes and grain, not smooth areas."""
    gray = image.mean(axis=-1)
    return float((gray - ndimage.gaussian_filter(gray, 2)).std())


def _coarse_texture(image: np.ndarray) -> float:
    """Std of a band-pass filtered gray image: shapes and strokes a few pixels wide."""
    gray = image.mean(axis=-1)
    return float((ndimage.gaussian_filter(gray, 2) - ndimage.gaussian_filter(gray, 8)).std())


def _hue_clusters(image: np.ndarray) -> int:
    """Number of 30-degree hue bins holding at least 5% of the saturated pixels."""
    hsv = rgb2hsv(image)
    saturated = hsv[..., 1] > 0.25
    hues = (hsv[..., 0][saturated] * 12).astype(int) % 12
    share = np.bincount(hues, minlength=12) / max(1, saturated.sum())
    return int((share >= 0.05).sum())


# --------------------------------------------------------------------------- names and descriptions


def test_names():
    assert samples.names() == samples.content_names() + samples.style_names()
    assert len(samples.content_names()) >= 4
    assert len(samples.style_names()) >= 4
    assert len(set(samples.names())) == len(samples.names())
    assert {"astronaut", "chelsea", "coffee", "rocket"} <= set(samples.content_names())
    assert {"swirls", "stained_glass", "shapes", "waves"} <= set(samples.style_names())


def test_is_sample():
    assert samples.is_sample("astronaut") and samples.is_sample("swirls")
    assert not samples.is_sample("astronaut.png")
    assert not samples.is_sample("photos/me.jpg")
    assert not samples.is_sample(None)


@pytest.mark.parametrize("name", samples.names())
def test_describe_is_one_line(name):
    text = samples.describe(name)
    assert isinstance(text, str) and 20 < len(text) < 200 and "\n" not in text
    assert ("photo" in text) == (name in samples.content_names())


def test_unknown_name_lists_the_available_ones():
    for call in (samples.load, samples.describe):
        with pytest.raises(InputError) as info:
            call("mona_lisa")
        message = str(info.value)
        assert "unknown sample 'mona_lisa'" in message
        assert all(name in message for name in samples.names())


def test_bad_max_size():
    with pytest.raises(InputError, match="max_size"):
        samples.load("swirls", max_size=0)
    with pytest.raises(InputError, match="max_size"):
        samples.load("astronaut", max_size=-1)


# --------------------------------------------------------------------------- photos


@pytest.mark.parametrize("name", samples.content_names())
def test_photo_loads_offline(name):
    x = samples.load(name, max_size=96)
    assert x.dtype == torch.float32 and x.dim() == 4 and x.shape[:2] == (1, 3)
    assert max(x.shape[-2:]) == 96 and min(x.shape[-2:]) >= 8
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    assert float(x.std()) > 0.05  # a real picture, not a blank


def test_photo_full_size_and_colour():
    x = samples.load("chelsea")
    assert tuple(x.shape) == (1, 3, 300, 451)
    assert float((x[0, 0] - x[0, 2]).abs().mean()) > 0.05  # a colour photo
    gray = samples.load("camera", max_size=64)
    assert torch.equal(gray[0, 0], gray[0, 1])  # grayscale photo as three equal channels


# --------------------------------------------------------------------------- the photo set of notebook 01


def test_photo_set_names_are_33_different_files_of_three_packages():
    names = samples.photo_set_names()
    assert len(names) == len(set(names)) == 33
    paths = [samples.photo_path(n) for n in names]
    assert len(set(paths)) == 33 and all(p.is_file() for p in paths)
    packages = {p.parent.parent.name for p in paths} | {p.parent.name for p in paths}
    assert {"skimage", "foolbox", "sample_data"} & packages == {"skimage", "foolbox", "sample_data"}
    assert len({p.read_bytes()[:4096] for p in paths}) == 33  # no file twice under two names


@pytest.mark.parametrize(
    "name",
    [n for n in samples.photo_set_names() if not n.startswith("imagenet_")][-1:]
    + [n for n in samples.photo_set_names() if n.startswith("imagenet_")],
)
def test_photo_set_photos_are_real_colour_photos(name):
    from course_nst.images import load_image

    x = load_image(samples.photo_path(name), max_size=64)
    assert x.shape[:2] == (1, 3) and max(x.shape[-2:]) == 64
    assert float(x.std()) > 0.05  # not a blank
    assert float((x[0, 0] - x[0, 2]).abs().mean()) > 0.02  # colour
    line = samples.describe_photo(name)
    assert "\n" not in line and len(line) > 10


def test_unknown_photo_names_the_choices():
    with pytest.raises(InputError, match="imagenet_00_243"):
        samples.photo_path("mona_lisa")
    with pytest.raises(InputError, match="choose from"):
        samples.describe_photo("mona_lisa")


def test_missing_foolbox_is_a_clear_error(monkeypatch):
    import importlib.metadata

    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    with pytest.raises(InputError, match="pip install foolbox"):
        samples.photo_path("imagenet_00_243")


# --------------------------------------------------------------------------- style paintings


@pytest.mark.parametrize("name", samples.style_names())
def test_style_loads(name):
    x = samples.load(name, max_size=SMALL)
    assert tuple(x.shape) == (1, 3, SMALL, SMALL)
    assert x.dtype == torch.float32
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0


def test_default_style_size():
    x = samples.load(samples.style_names()[0])
    assert tuple(x.shape) == (1, 3, samples.DEFAULT_STYLE_SIZE, samples.DEFAULT_STYLE_SIZE)


@pytest.mark.parametrize("name", samples.style_names())
def test_style_is_deterministic(name):
    first = samples.load(name, max_size=96)
    first.mul_(0)  # a caller changing its copy must not change the cache
    samples._painting.cache_clear()  # force drawing it again from scratch
    second = samples.load(name, max_size=96)
    third = samples.load(name, max_size=96)
    assert torch.equal(second, third)
    assert float(second.std()) > 0.05
    other = samples.load(name, max_size=80)
    assert tuple(other.shape) == (1, 3, 80, 80)


@pytest.mark.parametrize("name", samples.style_names())
def test_style_looks_alike_at_two_sizes(name):
    # the composition is defined in fractions of the side, so a smaller drawing
    # is roughly a shrunken copy of a larger one
    small, large = _array(name, 64), _array(name, SMALL)
    shrunk = large.reshape(64, 2, 64, 2, 3).mean(axis=(1, 3))
    blur = lambda a: ndimage.gaussian_filter(a, (3, 3, 0))  # noqa: E731
    assert np.abs(blur(small) - blur(shrunk)).mean() < 0.08


@pytest.mark.parametrize("name", samples.style_names())
def test_style_has_rich_texture_and_palette(name):
    image = _array(name)
    assert _fine_texture(image) > 0.05, "too smooth: style transfer would copy flat areas"
    assert _coarse_texture(image) > 0.03
    histogram = _colour_histogram(image)
    assert (histogram >= 0.02).sum() >= 6, "too few distinct colours"
    assert histogram.max() < 0.5, "one colour dominates"
    assert _hue_clusters(image) >= 2


def test_texture_checks_reject_a_dull_image():
    # the checks above can fail: a smooth gradient has no texture
    y, x = np.mgrid[0:SMALL, 0:SMALL] / SMALL
    gradient = np.stack([x, y, np.full_like(x, 0.5)], axis=-1)
    assert _fine_texture(gradient) < 0.01 and _coarse_texture(gradient) < 0.01
    assert _hue_clusters(np.full((SMALL, SMALL, 3), (0.2, 0.3, 0.9))) == 1


def test_styles_differ_from_each_other():
    arrays = {name: _array(name) for name in samples.style_names()}
    for a, b in itertools.combinations(arrays, 2):
        overlap = np.minimum(_colour_histogram(arrays[a]), _colour_histogram(arrays[b])).sum()
        assert overlap < 0.6, f"{a} and {b} have nearly the same colours ({overlap:.2f})"
        assert np.abs(arrays[a] - arrays[b]).mean() > 0.15, f"{a} and {b} look alike"
