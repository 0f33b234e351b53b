"""Load, save, convert and resize images.

Every image inside ``course_nst`` is a PyTorch tensor of shape ``[1, 3, H, W]``,
``float32``, with values in ``[0, 1]``. :func:`load_image` turns whatever the
user has (a file, a URL, a PIL image, a NumPy array, a tensor) into that form
and checks it on the way in, so that a mistake gives a one-line
:class:`~course_nst.errors.InputError` here instead of a long traceback from
deep inside torch later on.

Conversions:

* grayscale is repeated into three channels;
* transparency (RGBA, LA, palettes with a transparent colour) is composited
  over a white background;
* 16-bit images are scaled by 65535 (not clipped at 255);
* CMYK, YCbCr, ... are converted by PIL;
* the EXIF orientation tag of photos is applied, so a portrait photo stays
  upright.
"""

from __future__ import annotations

import io
import os
import tempfile
import urllib.error
import urllib.request
import warnings
from pathlib import Path
from typing import Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

from course_nst.errors import InputError

__all__ = [
    "MIN_SIZE",
    "load_image",
    "save_image",
    "to_pil",
    "to_numpy",
    "resize",
]

#: The smallest side (in pixels) that :func:`load_image` accepts.
MIN_SIZE = 8

#: Seconds to wait for a server when :func:`load_image` is given a URL.
URL_TIMEOUT = 30
#: The most pixels a file may decode to (a small file can hold a huge one-colour image). JPEGs larger than
#: this, or than ``max_size``, are scaled down by the decoder itself (PIL's ``draft``); others are refused.
MAX_PIXELS = 64_000_000

ImageSource = Union[str, os.PathLike, Image.Image, np.ndarray, torch.Tensor]


# --------------------------------------------------------------------------- loading


def load_image(source: ImageSource, max_size: int | None = None) -> torch.Tensor:
    """Return ``source`` as a ``[1, 3, H, W]`` float32 tensor with values in ``[0, 1]``.

    ``source`` may be a file path (``str`` or ``pathlib.Path``), an ``http(s)``
    URL, a PIL image, a NumPy array (``HxW``, ``HxWx1``, ``HxWx3``, ``HxWx4``;
    ``uint8``, ``uint16``, ``bool`` or float in ``[0, 1]``) or a torch tensor
    (``[H, W]``, ``[C, H, W]`` or ``[1, C, H, W]`` with ``C`` in 1, 3, 4; float in
    ``[0, 1]``, ``uint8`` or ``bool``).

    ``max_size`` bounds the longer side in pixels: larger images are scaled
    down (keeping the aspect ratio, antialiased); smaller ones are left alone.
    The result is a new tensor that never shares memory with ``source``.
    """
    _check_max_size(max_size)
    if isinstance(source, torch.Tensor):
        image = _from_tensor(source)
        what = f"tensor of shape {list(source.shape)}"
    elif isinstance(source, np.ndarray):
        image = _from_array(source)
        what = f"array of shape {source.shape}"
    elif isinstance(source, Image.Image):
        image = _from_pil(source)
        what = f"PIL image ({source.mode} {source.width}x{source.height})"
    elif isinstance(source, (str, os.PathLike)):
        text = os.fspath(source)
        if isinstance(text, bytes):
            text = os.fsdecode(text)
        if _looks_like_url(text):
            image = _from_pil(_open_url(text, max_size))
        else:
            image = _from_pil(_open_path(Path(text).expanduser(), max_size))
        what = text
    else:
        raise InputError(
            f"cannot load an image from a {type(source).__name__}; pass a file path, "
            "a URL, a PIL image, a NumPy array or a torch tensor"
        )

    height, width = image.shape[-2:]
    if height < MIN_SIZE or width < MIN_SIZE:
        raise InputError(
            f"{what} is too small: {width}x{height} pixels; "
            f"at least {MIN_SIZE}x{MIN_SIZE} is needed"
        )
    if max_size is not None and max(height, width) > max_size:
        image = resize(image, max_size)
    return image.contiguous()


def _check_max_size(max_size) -> None:
    if max_size is None:
        return
    if isinstance(max_size, bool) or not isinstance(max_size, (int, np.integer)):
        raise InputError(
            f"max_size must be a whole number of pixels (the longer side), "
            f"got {max_size!r} ({type(max_size).__name__})"
        )
    if max_size < MIN_SIZE:
        raise InputError(
            f"max_size must be at least {MIN_SIZE} pixels (the longer side), got {max_size}"
        )


def _looks_like_url(text: str) -> bool:
    return "://" in text and text.split("://", 1)[0].isalpha()


def _open_url(url: str, max_size: int | None = None) -> Image.Image:
    scheme = url.split("://", 1)[0].lower()
    if scheme not in ("http", "https"):
        raise InputError(
            f"unsupported URL scheme {scheme!r} in {url}; use http(s) or a local file path"
        )
    try:
        with urllib.request.urlopen(url, timeout=URL_TIMEOUT) as response:
            data = response.read()
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", None) or error
        raise InputError(
            f"could not download {url}: {reason}; check the address and your network, "
            "or download the file and pass its path"
        ) from None
    if not data:
        raise InputError(f"{url} returned an empty response; check the address")
    return _decode(io.BytesIO(data), url, max_size)


def _open_path(path: Path, max_size: int | None = None) -> Image.Image:
    if not path.exists():
        where = "" if path.is_absolute() else f" (relative to {Path.cwd()})"
        raise InputError(f"no such file: {path}{where}; check the path")
    if path.is_dir():
        raise InputError(f"{path} is a directory, not an image file; pass the path of one image")
    try:
        size = path.stat().st_size
        if size == 0:
            raise InputError(f"{path} is an empty file (0 bytes); re-download or re-export it")
        with open(path, "rb") as file:
            data = file.read()
    except PermissionError:
        raise InputError(f"cannot read {path}: permission denied; check the file's permissions") from None
    return _decode(io.BytesIO(data), str(path), max_size)


def _decode(stream: io.BytesIO, what: str, max_size: int | None = None) -> Image.Image:
    """Open and fully decode an image file, turning PIL's failures into InputError.

    The size is checked before decoding: a JPEG is decoded at a reduced scale when it is larger than
    ``max_size`` or :data:`MAX_PIXELS`; any other file over :data:`MAX_PIXELS` is refused.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(stream)
    except UnidentifiedImageError:
        raise InputError(
            f"{what} is not an image PIL can read; is it really a PNG/JPEG file?"
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        image = None
    if image is None or image.width * image.height > MAX_PIXELS or max_size is not None:
        image = _reduce_while_decoding(stream, image, what, max_size)
    try:
        image.load()  # force the full decode now: a truncated file fails here
    except (OSError, SyntaxError, ValueError) as error:
        raise InputError(
            f"{what} is truncated or corrupt ({error}); re-download or re-export it"
        ) from None
    return image


def _reduce_while_decoding(stream: io.BytesIO, image: Image.Image | None, what: str,
                           max_size: int | None) -> Image.Image:
    """Ask the JPEG decoder for a smaller scale; refuse what stays over :data:`MAX_PIXELS`."""
    if image is None:  # PIL refused to open it at all: look at the header without its bomb check
        limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            stream.seek(0)
            image = Image.open(stream)
        except Exception:  # noqa: BLE001 - reported as unreadable below
            raise InputError(f"{what} is not an image PIL can read") from None
        finally:
            Image.MAX_IMAGE_PIXELS = limit
    width, height = image.size
    if image.format == "JPEG":  # the decoder can scale by 1/2, 1/4 or 1/8 on the way
        fits = [k for k in (1, 2, 4, 8) if (width / k) * (height / k) <= MAX_PIXELS]
        big_enough = [k for k in (1, 2, 4, 8) if max_size is not None and max(width, height) / k >= max_size]
        k = max(min(fits, default=8), max(big_enough, default=1))
        if k > 1:
            image.draft(image.mode if image.mode in ("RGB", "L") else None, (-(-width // k), -(-height // k)))
    if image.width * image.height > MAX_PIXELS:
        raise InputError(
            f"{what} is {width}x{height} pixels ({width * height / 1e6:.0f} megapixels), more than the "
            f"{MAX_PIXELS / 1e6:.0f} this loader decodes; shrink it first (or save it as JPEG)"
        )
    return image


def _from_pil(image: Image.Image) -> torch.Tensor:
    """PIL image in any mode -> [1, 3, H, W] float in [0, 1]."""
    try:
        image = ImageOps.exif_transpose(image)
    except Exception:  # a broken EXIF block must not stop us from using the pixels
        pass
    mode = image.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        # 16-bit grayscale: PIL cannot convert it to RGB without clipping at 255
        array = np.asarray(image).astype(np.float64) / 65535.0
        return _from_array(np.clip(array, 0.0, 1.0).astype(np.float32))
    if mode == "F":
        return _from_array(np.asarray(image, dtype=np.float32))
    if mode == "P":
        has_alpha = "transparency" in image.info or image.palette.mode == "RGBA"
        image = image.convert("RGBA" if has_alpha else "RGB")
    elif mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        image = image.convert("RGBA")
    elif mode in ("1", "L"):
        image = image.convert("L")
    elif mode != "RGB":
        try:
            image = image.convert("RGB")  # CMYK, YCbCr, LAB, HSV, RGBX, ...
        except (ValueError, OSError):
            raise InputError(
                f"cannot convert a PIL image of mode {mode!r} to RGB; convert it yourself first"
            ) from None
    return _from_array(np.asarray(image))


def _from_array(array: np.ndarray) -> torch.Tensor:
    """NumPy image (HxW or HxWxC, channels last) -> [1, 3, H, W] float in [0, 1]."""
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        hint = ""
        if array.ndim == 3 and array.shape[0] in (1, 3, 4):
            hint = " (it looks channels-first; use np.transpose(a, (1, 2, 0)))"
        raise InputError(
            f"a NumPy image must have shape HxW, HxWx1, HxWx3 or HxWx4, got {array.shape}{hint}"
        )
    values = _to_unit_float(np.ascontiguousarray(array), "array")
    return _finish(torch.from_numpy(values).permute(2, 0, 1).unsqueeze(0))


def _from_tensor(tensor: torch.Tensor) -> torch.Tensor:
    """Torch image ([H,W], [C,H,W], [1,C,H,W]) -> [1, 3, H, W] float in [0, 1]."""
    shape = list(tensor.shape)
    x = tensor.detach().to("cpu")
    if x.dim() == 2:
        x = x[None, None]
    elif x.dim() == 3:
        x = x[None]
    elif x.dim() == 4 and x.shape[0] != 1:
        raise InputError(
            f"got a batch of {x.shape[0]} images (shape {shape}); pass one image, e.g. x[0:1]"
        )
    if x.dim() != 4 or x.shape[1] not in (1, 3, 4):
        hint = ""
        if len(shape) in (3, 4) and shape[-1] in (1, 3, 4):
            hint = " (it looks channels-last; use x.permute(2, 0, 1))"
        raise InputError(
            f"an image tensor must have shape [H, W], [C, H, W] or [1, C, H, W] with C in "
            f"1, 3, 4; got {shape}{hint}"
        )
    values = _to_unit_float(x.numpy(), "tensor")
    return _finish(torch.from_numpy(values))


def _to_unit_float(values: np.ndarray, what: str) -> np.ndarray:
    """Integer/bool/float pixel values -> float32 in [0, 1], with a clear error if unsure."""
    if values.dtype == np.bool_:
        return values.astype(np.float32)
    if values.dtype == np.uint8:
        return values.astype(np.float32) / 255.0
    if values.dtype == np.uint16:
        return (values.astype(np.float64) / 65535.0).astype(np.float32)
    if np.issubdtype(values.dtype, np.integer):
        raise InputError(
            f"an integer {what} of dtype {values.dtype} is ambiguous; convert it to uint8 "
            "(0-255) or to float in [0, 1]"
        )
    if not np.issubdtype(values.dtype, np.floating):
        raise InputError(
            f"cannot use a {what} of dtype {values.dtype} as an image; use float in [0, 1] or uint8"
        )
    values = values.astype(np.float32)
    if values.size == 0:
        raise InputError(f"the {what} is empty (shape {values.shape})")
    if not np.isfinite(values).all():
        raise InputError(f"the {what} contains NaN or infinite values; fix the values first")
    high, low = float(values.max()), float(values.min())
    if high > 1.5:
        raise InputError(
            f"float {what} values go up to {high:.4g}, but [0, 1] is expected; "
            "if they are 0-255, divide by 255"
        )
    if low < -0.5:
        raise InputError(
            f"float {what} values go down to {low:.4g}, but [0, 1] is expected; "
            "undo any mean/std normalisation first"
        )
    return np.clip(values, 0.0, 1.0)


def _finish(x: torch.Tensor) -> torch.Tensor:
    """[1, C, H, W] with C in 1, 3, 4 -> [1, 3, H, W]: gray to RGB, alpha over white."""
    x = x.to(torch.float32)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    elif x.shape[1] == 4:
        rgb, alpha = x[:, :3], x[:, 3:]
        x = rgb * alpha + (1.0 - alpha)  # composite over a white background
    return x.clone()


# --------------------------------------------------------------------------- output


def _image_tensor(image: torch.Tensor, what: str = "image") -> torch.Tensor:
    """Check an output image ([1,3,H,W], [3,H,W], or 1-channel) -> [3, H, W] in [0, 1]."""
    if not isinstance(image, torch.Tensor):
        raise InputError(
            f"{what} must be a torch tensor of shape [1, 3, H, W]; got a {type(image).__name__} "
            "(use load_image to convert it)"
        )
    x = image.detach().to("cpu", torch.float32)
    if x.dim() == 4 and x.shape[0] == 1:
        x = x[0]
    if x.dim() != 3 or x.shape[0] not in (1, 3):
        raise InputError(f"{what} must have shape [1, 3, H, W] or [3, H, W], got {list(image.shape)}")
    if torch.isnan(x).any():
        raise InputError(f"{what} contains NaN values; the optimisation probably diverged")
    return x.expand(3, -1, -1).clamp(0.0, 1.0)


def to_numpy(image: torch.Tensor) -> np.ndarray:
    """``[1, 3, H, W]`` (or ``[3, H, W]``) tensor -> ``H x W x 3`` float32 array in ``[0, 1]``."""
    return np.ascontiguousarray(_image_tensor(image).permute(1, 2, 0).numpy())


def to_pil(image: torch.Tensor) -> Image.Image:
    """``[1, 3, H, W]`` (or ``[3, H, W]``) tensor -> 8-bit RGB PIL image."""
    pixels = np.rint(to_numpy(image) * 255.0).astype(np.uint8)
    return Image.fromarray(pixels, mode="RGB")


def save_image(image: torch.Tensor, path: str | os.PathLike) -> Path:
    """Write a ``[1, 3, H, W]`` or ``[3, H, W]`` tensor to ``path`` and return the path.

    The format follows the extension (``.png``, ``.jpg``, ...). Values are
    clamped to ``[0, 1]``. Missing parent directories are created. The file is
    written to a temporary file next to it and then renamed, so an interrupted
    save never leaves a half-written image behind.
    """
    path = Path(path).expanduser()
    extension = path.suffix.lower()
    image_format = Image.registered_extensions().get(extension)
    if image_format is None or image_format not in Image.SAVE:
        raise InputError(
            f"cannot tell the image format from {path.name!r}; use a .png or .jpg file name"
        )
    if path.is_dir():
        raise InputError(f"{path} is a directory; pass a file name such as {path / 'image.png'}")
    pil = to_pil(image)
    options = {"quality": 95} if image_format == "JPEG" else {}

    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            pil.save(file, format=image_format, **options)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temp_name, 0o666 & ~_umask())  # mkstemp creates 0600; a saved image is a normal file
        os.replace(temp_name, path)
    except BaseException:
        if os.path.exists(temp_name):
            os.unlink(temp_name)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# --------------------------------------------------------------------------- resizing


def resize(image: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """Resize an image tensor (``[1, C, H, W]`` or ``[C, H, W]``), antialiased.

    ``size`` is either the new longer side (the aspect ratio is kept) or an
    explicit ``(H, W)``. Up- and downscaling both work; values stay in ``[0, 1]``.
    """
    if not isinstance(image, torch.Tensor) or image.dim() not in (3, 4):
        raise InputError("resize expects an image tensor of shape [1, C, H, W] or [C, H, W]")
    height, width = image.shape[-2:]
    if isinstance(size, (tuple, list)) and len(size) == 2:
        new_height, new_width = size
    elif isinstance(size, (int, np.integer)) and not isinstance(size, bool) and size >= 1:
        scale = size / max(height, width)
        new_height = max(1, round(height * scale))
        new_width = max(1, round(width * scale))
    else:
        raise InputError(f"size must be the longer side (a positive int) or (H, W), got {size!r}")
    for value in (new_height, new_width):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise InputError(f"size must be positive whole numbers of pixels, got {size!r}")
    if (new_height, new_width) == (height, width):
        return image.clone()
    batched = image if image.dim() == 4 else image[None]
    out = F.interpolate(
        batched.to(torch.float32),
        size=(int(new_height), int(new_width)),
        mode="bicubic",
        align_corners=False,
        antialias=True,
    ).clamp(0.0, 1.0)
    return out if image.dim() == 4 else out[0]
