"""Tests for course_nst.images: every source type, conversions, errors, saving."""

from __future__ import annotations

import functools
import http.server
import os
import threading

import numpy as np
import pytest
import torch
from PIL import Image

from course_nst.errors import InputError
from course_nst.images import load_image, resize, save_image, to_numpy, to_pil


def _check(x: torch.Tensor, height: int, width: int) -> None:
    assert isinstance(x, torch.Tensor)
    assert x.dtype == torch.float32
    assert tuple(x.shape) == (1, 3, height, width)
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0


def _gradient(height: int = 12, width: int = 16) -> np.ndarray:
    """A uint8 HxWx3 image whose pixels all differ, to catch flips and transposes."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 15, y * 20, (x + y) * 7], axis=-1).astype(np.uint8)


# --------------------------------------------------------------------------- sources


def test_path_str_and_pathlib(tmp_path):
    pixels = _gradient()
    path = tmp_path / "g.png"
    Image.fromarray(pixels).save(path)
    for source in (path, str(path)):
        x = load_image(source)
        _check(x, 12, 16)
        assert torch.allclose(x[0].permute(1, 2, 0), torch.from_numpy(pixels / 255.0).float())


def test_pil_numpy_and_tensor_sources_agree():
    pixels = _gradient()
    expected = torch.from_numpy(pixels / 255.0).float().permute(2, 0, 1)[None]
    sources = [
        Image.fromarray(pixels),
        pixels,
        pixels.astype(np.float32) / 255.0,
        pixels.astype(np.float64) / 255.0,
        (pixels.astype(np.uint16) * 257),
        expected[0],  # [3, H, W]
        expected,  # [1, 3, H, W]
        torch.from_numpy(pixels).permute(2, 0, 1),  # uint8 tensor
    ]
    for source in sources:
        x = load_image(source)
        _check(x, 12, 16)
        assert torch.allclose(x, expected, atol=1e-6), type(source)


def test_gray_sources_become_three_equal_channels():
    gray = np.linspace(0, 1, 8 * 10, dtype=np.float32).reshape(8, 10)
    for source in (
        gray,
        gray[:, :, None],
        torch.from_numpy(gray),
        torch.from_numpy(gray)[None],
        torch.from_numpy(gray)[None, None],
    ):
        x = load_image(source)
        _check(x, 8, 10)
        assert torch.equal(x[0, 0], x[0, 1]) and torch.equal(x[0, 1], x[0, 2])
        assert torch.allclose(x[0, 0], torch.from_numpy(gray))


def test_bool_array_is_black_and_white():
    mask = np.zeros((8, 8), dtype=bool)
    mask[:, 4:] = True
    x = load_image(mask)
    assert float(x[0, :, 0, 0].max()) == 0.0 and float(x[0, :, 0, 7].min()) == 1.0


def test_rgba_array_and_tensor_composite_over_white():
    rgba = np.zeros((8, 8, 4), dtype=np.uint8)
    rgba[..., 0] = 255  # red
    rgba[:, :4, 3] = 255  # left half opaque, right half fully transparent
    for source in (rgba, torch.from_numpy(rgba).permute(2, 0, 1), Image.fromarray(rgba, "RGBA")):
        x = load_image(source)
        assert torch.allclose(x[0, :, 0, 0], torch.tensor([1.0, 0.0, 0.0]))
        assert torch.allclose(x[0, :, 0, 7], torch.tensor([1.0, 1.0, 1.0]))  # white shows through


def test_half_transparent_black_is_mid_gray():
    la = Image.new("LA", (8, 8), (0, 128))
    x = load_image(la)
    assert torch.allclose(x, torch.full_like(x, 1 - 128 / 255), atol=1e-6)


def test_tensor_input_is_copied_and_detached():
    source = torch.rand(1, 3, 9, 9, requires_grad=True)
    x = load_image(source)
    assert not x.requires_grad
    x.zero_()
    assert float(source.detach().abs().sum()) > 0


def test_url_is_fetched(tmp_path):
    Image.fromarray(_gradient()).save(tmp_path / "web.png")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *args: None
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        _check(load_image(f"{base}/web.png"), 12, 16)
        with pytest.raises(InputError, match="could not download"):
            load_image(f"{base}/missing.png")
    finally:
        server.shutdown()
        server.server_close()


def test_unreachable_url_gives_input_error():
    with pytest.raises(InputError, match="could not download .*network"):
        load_image("http://127.0.0.1:1/nothing.png")


def test_unsupported_url_scheme():
    with pytest.raises(InputError, match="scheme"):
        load_image("ftp://example.com/a.png")


# --------------------------------------------------------------------------- conversions


def test_palette_image():
    pal = Image.new("P", (10, 8))
    pal.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    pal.paste(1, (5, 0, 10, 8))
    x = load_image(pal)
    assert torch.allclose(x[0, :, 0, 0], torch.tensor([1.0, 0.0, 0.0]))
    assert torch.allclose(x[0, :, 0, 9], torch.tensor([0.0, 0.0, 1.0]))


def test_palette_transparency_goes_white(tmp_path):
    pal = Image.new("P", (10, 8))
    pal.putpalette([0, 0, 0, 0, 200, 0] + [0] * 762)
    pal.paste(1, (5, 0, 10, 8))
    pal.info["transparency"] = 0  # index 0 (black) is transparent
    path = tmp_path / "pal.png"
    pal.save(path, transparency=0)
    for source in (pal, path):
        x = load_image(source)
        assert torch.allclose(x[0, :, 0, 0], torch.ones(3))
        assert torch.allclose(x[0, :, 0, 9], torch.tensor([0.0, 200 / 255, 0.0]))


def test_pa_image():
    pa = Image.new("PA", (8, 8))
    pa.putpalette([0, 0, 255] + [0] * 765)
    x = load_image(pa)  # alpha 0 everywhere: all white
    assert torch.allclose(x, torch.ones_like(x))


def test_sixteen_bit_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 1000, 32768, 65535]] * 8, dtype=np.uint16).repeat(2, axis=1)
    image = Image.fromarray(values)
    assert image.mode.startswith("I;16")
    path = tmp_path / "deep.png"
    image.save(path)
    for source in (image, path, image.convert("I"), values):
        x = load_image(source)
        _check(x, 8, 8)
        expected = torch.tensor([0, 0, 1000, 1000, 32768, 32768, 65535, 65535]) / 65535
        assert torch.allclose(x[0, 0, 0], expected.float(), atol=1e-6), source
    # the value 1000/65535 would be 1.0 if 16-bit values were clipped at 255
    assert float(load_image(path)[0, 0, 0, 2]) < 0.02


def test_cmyk_known_colours():
    cyan = load_image(Image.new("CMYK", (8, 8), (255, 0, 0, 0)))
    assert torch.allclose(cyan[0, :, 0, 0], torch.tensor([0.0, 1.0, 1.0]))
    magenta = load_image(Image.new("CMYK", (8, 8), (0, 255, 0, 0)))
    assert torch.allclose(magenta[0, :, 0, 0], torch.tensor([1.0, 0.0, 1.0]))
    black = load_image(Image.new("CMYK", (8, 8), (0, 0, 0, 255)))
    assert float(black.max()) == 0.0


def test_grayscale_and_one_bit_files(tmp_path):
    Image.new("L", (9, 8), 51).save(tmp_path / "l.png")
    x = load_image(tmp_path / "l.png")
    assert torch.allclose(x, torch.full_like(x, 0.2))
    Image.new("1", (9, 8), 1).save(tmp_path / "one.png")
    assert float(load_image(tmp_path / "one.png").min()) == 1.0


def test_exif_orientation_is_applied(tmp_path):
    # stored 20 wide x 10 tall: left half red, right half blue
    pixels = np.zeros((10, 20, 3), dtype=np.uint8)
    pixels[:, :10, 0] = 255
    pixels[:, 10:, 2] = 255
    image = Image.fromarray(pixels)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    path = tmp_path / "rotated.jpg"
    image.save(path, exif=exif.tobytes(), quality=98)
    x = load_image(path)
    _check(x, 20, 10)  # upright: now 10 wide x 20 tall
    top, bottom = x[0, :, 2, 5], x[0, :, 17, 5]
    assert top[0] > 0.8 and top[2] < 0.2  # the red (left) half is now on top
    assert bottom[2] > 0.8 and bottom[0] < 0.2


# --------------------------------------------------------------------------- max_size and resize


def test_max_size_bounds_the_longer_side_and_keeps_aspect():
    x = load_image(np.zeros((60, 120, 3), dtype=np.uint8), max_size=40)
    _check(x, 20, 40)
    tall = load_image(np.zeros((90, 30), dtype=np.uint8), max_size=30)
    _check(tall, 30, 10)


def test_max_size_never_upscales():
    _check(load_image(np.zeros((10, 12, 3), dtype=np.uint8), max_size=500), 10, 12)


def test_downscale_is_antialiased():
    stripes = np.zeros((64, 64), dtype=np.float32)
    stripes[:, ::2] = 1.0  # one-pixel stripes average to gray when shrunk
    x = load_image(stripes, max_size=16)
    assert abs(float(x.mean()) - 0.5) < 0.05 and float(x.std()) < 0.1


@pytest.mark.parametrize("bad", [0, -5, 3, 2.5, "64", True])
def test_bad_max_size(bad):
    with pytest.raises(InputError, match="max_size"):
        load_image(np.zeros((16, 16), dtype=np.uint8), max_size=bad)


def test_resize_longer_side_and_explicit_shape():
    x = torch.rand(1, 3, 30, 60)
    assert tuple(resize(x, 20).shape) == (1, 3, 10, 20)
    assert tuple(resize(x, 120).shape) == (1, 3, 60, 120)  # upscaling allowed here
    assert tuple(resize(x, (7, 9)).shape) == (1, 3, 7, 9)
    assert tuple(resize(x[0], 20).shape) == (3, 10, 20)
    y = resize(x, 45)
    assert float(y.min()) >= 0 and float(y.max()) <= 1
    with pytest.raises(InputError):
        resize(x, 0)
    with pytest.raises(InputError):
        resize(x, (5, -1))


# --------------------------------------------------------------------------- saving and helpers


@pytest.mark.parametrize("shape", [(1, 3, 10, 14), (3, 10, 14)])
def test_png_round_trip_is_exact_to_one_level(tmp_path, shape):
    x = torch.rand(shape, generator=torch.Generator().manual_seed(0))
    out = save_image(x, tmp_path / "deep" / "dir" / "x.png")  # parents are created
    assert out == tmp_path / "deep" / "dir" / "x.png" and out.is_file()
    back = load_image(out)
    assert (back - x.reshape(1, 3, 10, 14)).abs().max() <= 0.5 / 255 + 1e-6


def test_jpeg_save_and_clamping(tmp_path):
    x = torch.full((1, 3, 16, 16), 0.5)
    x[..., :8] = 2.0  # clamped to 1
    x[..., 8:] = -1.0  # clamped to 0
    path = save_image(x, tmp_path / "x.jpg")
    with Image.open(path) as image:
        assert image.format == "JPEG"
    back = load_image(path)
    assert float(back[..., :6].min()) > 0.95 and float(back[..., 10:].max()) < 0.05


def test_save_leaves_no_temporary_files(tmp_path):
    save_image(torch.rand(1, 3, 8, 8), tmp_path / "a.png")
    save_image(torch.rand(1, 3, 8, 8), tmp_path / "a.png")  # overwrite
    assert os.listdir(tmp_path) == ["a.png"]


def test_interrupted_save_keeps_the_old_file(tmp_path, monkeypatch):
    path = save_image(torch.zeros(1, 3, 8, 8), tmp_path / "a.png")
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        save_image(torch.ones(1, 3, 8, 8), path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["a.png"]


def test_save_rejects_bad_input(tmp_path):
    with pytest.raises(InputError, match="format"):
        save_image(torch.rand(1, 3, 8, 8), tmp_path / "x.unknownext")
    with pytest.raises(InputError, match="shape"):
        save_image(torch.rand(2, 3, 8, 8), tmp_path / "x.png")
    with pytest.raises(InputError, match="NaN"):
        save_image(torch.full((1, 3, 8, 8), float("nan")), tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_to_numpy_and_to_pil():
    x = torch.rand(1, 3, 5, 7)
    array = to_numpy(x)
    assert array.shape == (5, 7, 3) and array.dtype == np.float32
    assert np.allclose(array, x[0].permute(1, 2, 0).numpy())
    pil = to_pil(x)
    assert pil.mode == "RGB" and pil.size == (7, 5)
    assert np.abs(np.asarray(pil) / 255.0 - array).max() <= 0.5 / 255 + 1e-6
    assert to_numpy(torch.full((3, 4, 4), 3.0)).max() == 1.0


# --------------------------------------------------------------------------- bad inputs


def test_missing_path():
    with pytest.raises(InputError, match="no such file: .*nope.png"):
        load_image("nope.png")


def test_directory(tmp_path):
    with pytest.raises(InputError, match="is a directory"):
        load_image(tmp_path)


def test_empty_file(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(InputError, match="empty file"):
        load_image(tmp_path / "empty.png")


def test_text_file_renamed_png(tmp_path):
    (tmp_path / "notes.png").write_text("these are my notes, not a picture\n")
    with pytest.raises(InputError, match="not an image PIL can read"):
        load_image(tmp_path / "notes.png")


@pytest.mark.parametrize("extension", [".jpg", ".png"])
def test_truncated_file(tmp_path, extension):
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    whole = tmp_path / f"whole{extension}"
    Image.fromarray(noise).save(whole)
    cut = tmp_path / f"cut{extension}"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(InputError, match="truncated or corrupt"):
        load_image(cut)


def test_one_pixel_image(tmp_path):
    Image.new("RGB", (1, 1)).save(tmp_path / "dot.png")
    with pytest.raises(InputError, match=r"too small: 1x1 pixels; at least 8x8 is needed"):
        load_image(tmp_path / "dot.png")
    with pytest.raises(InputError, match="7x20"):  # width x height
        load_image(np.zeros((20, 7, 3), dtype=np.uint8))


def test_nan_values():
    with pytest.raises(InputError, match="NaN"):
        load_image(np.full((8, 8), np.nan, dtype=np.float32))
    with pytest.raises(InputError, match="NaN"):
        load_image(torch.full((3, 8, 8), float("nan")))


def test_float_0_255_is_rejected_with_a_hint():
    with pytest.raises(InputError, match="divide by 255"):
        load_image(np.full((8, 8, 3), 200.0))
    with pytest.raises(InputError, match="divide by 255"):
        load_image(torch.full((1, 3, 8, 8), 255.0))
    with pytest.raises(InputError, match="normalisation"):
        load_image(torch.full((1, 3, 8, 8), -2.0))


@pytest.mark.parametrize("source", [42, [[0, 1], [1, 0]], None, b"bytes"])
def test_unsupported_types(source):
    with pytest.raises(InputError, match="cannot load an image from a"):
        load_image(source)


def test_bad_shapes_and_dtypes():
    with pytest.raises(InputError, match="batch of 2"):
        load_image(torch.rand(2, 3, 8, 8))
    with pytest.raises(InputError, match="channels-last"):
        load_image(torch.rand(8, 9, 3))
    with pytest.raises(InputError, match="channels-first"):
        load_image(np.random.rand(3, 8, 9))
    with pytest.raises(InputError, match="shape"):
        load_image(np.zeros((8, 8, 2)))
    with pytest.raises(InputError, match="ambiguous"):
        load_image(np.zeros((8, 8), dtype=np.int64))


def test_messages_are_one_line(tmp_path):
    (tmp_path / "notes.png").write_text("hello")
    for source in ("nope.png", tmp_path, tmp_path / "notes.png", np.full((8, 8), np.nan)):
        with pytest.raises(InputError) as info:
            load_image(source)
        assert "\n" not in str(info.value)
