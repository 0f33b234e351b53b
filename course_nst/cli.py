"""The ``course-nst`` command line.

    course-nst stylize CONTENT STYLE -o OUT.png [--size N] [--steps N] [--backbone NAME] ...
    course-nst stylize CONTENT STYLE [STYLE ...] -o OUT.png [--style-weights W ...] [--mask PATH ...]
                       [--colour {luminance,histogram}] [--style-scale X]
    course-nst demo [-o DIR]
    course-nst samples
    course-nst weights status
    course-nst weights download vgg19
    course-nst release NOTEBOOK... --out DIR [--solutions]
    course-nst grade STUDENT_NOTEBOOK... [--csv FILE] [--json FILE]

CONTENT and STYLE are image paths or sample names (``course-nst samples`` lists them).
Mistakes in the input print one line to stderr and exit with code 2.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from .errors import InputError

DEMO_CONTENT = "chelsea"
DEMO_STYLE = "swirls"


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors in one line with exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise InputError(f"{self.prog}: {message}")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {value}")
    return value


MIN_SIZE = 8  # the smallest image the networks accept (course_nst.images.MIN_SIZE)
SEED_MAX = 2**63 - 1


def _image_size(text: str) -> int:
    value = _positive_int(text)
    if value < MIN_SIZE:
        raise argparse.ArgumentTypeError(f"must be at least {MIN_SIZE} pixels, got {value}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 0 <= value <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"must be between 0 and 2**63-1, got {value}")
    return value


def check_device(name: str | None) -> None:
    """A one-line error for a device that does not exist here."""
    if name is None:
        return
    import torch

    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):
        raise InputError(f"unknown device {name!r}; use cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"--device {name}: no CUDA GPU is available here; use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise InputError(f"--device {name}: there are only {torch.cuda.device_count()} CUDA device(s)")
    elif dev.type == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise InputError(f"--device {name}: Apple's MPS is not available on this machine; use --device cpu")
    elif dev.type != "cpu":
        raise InputError(f"--device {name}: unsupported device type; use cpu, cuda or mps")


def check_output(out: Path, inputs: Sequence[str] = ()) -> None:
    """Before the run: the output can be written, and it is not one of the input images."""
    for source in inputs:
        src = Path(source)
        if src.exists() and out.exists() and os.path.samefile(src, out):
            raise InputError(f"output {out} is the input image {source}; choose another file name")
        if src.exists() and src.resolve() == out.resolve():
            raise InputError(f"output {out} is the input image {source}; choose another file name")
    if out.is_dir():
        raise InputError(f"output path {out} is a directory; give a file name such as {out / 'result.png'}")
    if out.exists() and not os.access(out, os.W_OK):
        raise InputError(f"cannot write {out}: permission denied")
    folder = out.parent
    while not folder.exists():
        if folder.parent == folder:
            break
        folder = folder.parent
    if folder.exists() and not folder.is_dir():
        raise InputError(f"cannot write {out}: {folder} is a file, not a folder")
    if not _can_create_in(folder):
        raise InputError(f"cannot write {out}: the folder {folder} is not writable")


def _can_create_in(folder: Path) -> bool:
    """Whether a new file can really be made in ``folder`` (root passes os.access on folders it cannot write)."""
    try:
        with tempfile.TemporaryFile(dir=folder, prefix=".course-nst-probe-"):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (``timeout``, a container stop, a job scheduler) interrupts like Ctrl-C does."""

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        old = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


@contextlib.contextmanager
def interrupt_once() -> Iterator[None]:
    """The first Ctrl-C or SIGTERM interrupts (the loop returns its best image); later ones are ignored, so
    they cannot cut the clean-up or the save."""

    def handler(signum: int, frame: Any) -> None:
        _ignore_interrupts()
        raise KeyboardInterrupt

    try:
        old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        for s, h in old.items():
            if signal.getsignal(s) is handler:
                signal.signal(s, h)


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Ignore Ctrl-C and SIGTERM for a moment (while the result is being saved)."""
    try:
        old = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:
        yield
        return
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _ignore_interrupts() -> None:
    with contextlib.suppress(ValueError):  # not the main thread
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def _load_input(source: str, what: str):
    from . import samples
    from .images import load_image

    if not Path(source).exists() and samples.is_sample(source):
        return samples.load(source)
    if not Path(source).exists() and not source.startswith(("http://", "https://")):
        raise InputError(
            f"{what} {source!r} is neither an existing file nor a sample name (samples: {', '.join(samples.names())})"
        )
    return load_image(source)


def _stylize(content, style, out: Path, args: argparse.Namespace) -> int:
    from .backbones import load_backbone
    from .transfer import NonFiniteCostError, check_fits_in_memory, output_shape, style_transfer

    check_device(args.device)
    if args.alpha == 0 and args.beta == 0:
        raise InputError("--alpha 0 and --beta 0 leave neither content nor style to match; give one a weight > 0")
    backbone = load_backbone(args.backbone, weights=args.weights, pooling=args.pooling, device=args.device)
    if args.content_layer or args.style_layers:
        backbone.check_layers([args.content_layer or backbone.content_layer, *(args.style_layers or [])])
    check_fits_in_memory(backbone, output_shape(content, args.size))  # before saying anything else
    print(f"backbone: {backbone.name} on {backbone.device}", file=sys.stderr)
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings(record=True) as caught, interrupt_once():
            warnings.simplefilter("always", RuntimeWarning)
            result = style_transfer(
                content,
                style,
                backbone=backbone,
                size=args.size,
                steps=args.steps,
                optimizer=args.optimizer,
                init=args.init,
                alpha=args.alpha,
                beta=args.beta,
                tv_weight=args.tv_weight,
                content_layer=args.content_layer,
                style_layers=args.style_layers,
                seed=args.seed,
                progress=not args.quiet,
                winograd=args.winograd,
                bfloat16=args.bfloat16,
                **_control_options(args),
            )
    except NonFiniteCostError as e:
        with signals_deferred():
            path = e.result.save(out)
        print(f"error: {e}; the last finite image was saved to {path}", file=sys.stderr)
        return 1
    for w in caught:
        if issubclass(w.category, RuntimeWarning):
            print(f"warning: {str(w.message).splitlines()[0]}", file=sys.stderr)
    if result.stopped == "interrupted":
        _ignore_interrupts()  # the run is over: a further Ctrl-C must not cut the save or the message
    with signals_deferred():
        path = result.save(out)
    if result.stopped == "interrupted":
        print(
            f"interrupted after {len(result.history)} evaluations: the best image so far was saved to {path}",
            file=sys.stderr,
        )
        return 130
    if not result.history:
        return 0
    first, best = result.start or result.history[0], result.final
    note = {"callback": " (stopped early)", "converged": " (J had stopped improving)"}.get(result.stopped or "", "")
    print(f"wrote {path}{note}")
    print(
        f"J before: {first['J']:.4g}  after: {best['J']:.4g}  "
        f"(J_content {best['J_content']:.4g}, J_style {best['J_style']:.4g}; "
        f"{len(result.history)} evaluations in {time.perf_counter() - t0:.1f} s)"
    )
    return 0


def _control_options(args: argparse.Namespace) -> dict:
    """style_transfer's control keywords from the stylize options (the demo has none)."""
    if not hasattr(args, "colour"):
        return {}
    return dict(colour=args.colour, style_weights=args.style_weights, masks=args.masks, style_scale=args.style_scale)


def _load_mask(source: str):
    """A grayscale mask image as [1, 1, H, W] in [0, 1] (a colour image is averaged over its channels)."""
    from .images import load_image

    if not Path(source).is_file():
        raise InputError(f"mask {source!r} is not an existing file")
    return load_image(source).mean(dim=1, keepdim=True)


def _cmd_stylize(args: argparse.Namespace) -> int:
    out = Path(args.output)
    if out.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise InputError(f"output file must end in .png or .jpg, got {out.name!r}")
    check_output(out, [args.content, *args.style, *(args.mask or [])])
    n = len(args.style)
    if args.style_weights is not None and len(args.style_weights) != n:
        raise InputError(f"--style-weights got {len(args.style_weights)} number(s) for {n} style image(s)")
    if args.mask is not None and len(args.mask) != n:
        raise InputError(f"--mask got {len(args.mask)} file(s) for {n} style image(s); give one mask per style")
    content = _load_input(args.content, "content")
    styles = [_load_input(s, "style") for s in args.style]
    style = styles[0] if n == 1 else styles
    args.masks = [_load_mask(m) for m in args.mask] if args.mask is not None else None
    return _stylize(content, style, out, args)


def _cmd_demo(args: argparse.Namespace) -> int:
    from . import samples

    out_dir = Path(args.output_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"{out_dir} exists and is not a directory")
    print(f"demo: the content of '{DEMO_CONTENT}' in the style of '{DEMO_STYLE}' (bundled samples)")
    out = out_dir / f"demo_{DEMO_CONTENT}_{DEMO_STYLE}.png"
    check_output(out)
    return _stylize(samples.load(DEMO_CONTENT), samples.load(DEMO_STYLE), out, args)


def _cmd_samples(args: argparse.Namespace) -> int:
    from . import samples

    for name in samples.names():
        print(f"{name:16s} {samples.describe(name)}")
    return 0


def _cmd_weights(args: argparse.Namespace) -> int:
    from .backbones import vgg19, weight_sources

    if args.action == "status":
        for src in weight_sources():
            state = "present" if src.present else "missing"
            print(f"{src.backbone:18s} {src.name:12s} {state:8s} {src.path or ''}")
            print(f"{'':18s} {'':12s} {src.description}")
            if not src.present:
                print(f"{'':18s} {'':12s} get it with: {src.how_to_get}")
        return 0
    # download: only torchvision's retrained VGG19 lives outside the installed packages
    if args.name != "vgg19":
        raise InputError(
            f"only vgg19's torchvision weights can be downloaded (the others ship with pip packages), got {args.name!r}"
        )
    path = vgg19.torchvision_weights_path()
    if path.is_file():
        print(f"already present: {path}")
        return 0
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    print(f"downloading {vgg19.TORCHVISION_URL} (548 MB) to {path}")
    try:
        torch.hub.download_url_to_file(vgg19.TORCHVISION_URL, str(path), hash_prefix="dcbb9e9d", progress=True)
    except Exception as e:  # network problems are the user's to fix
        raise InputError(
            f"download failed ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
            f"without internet, copy {vgg19.TORCHVISION_FILENAME} to {path}"
        ) from e
    print(f"saved {path}")
    return 0


def _add_transfer_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--size", type=_image_size, default=256, help="longer side of the output in pixels (default 256)")
    p.add_argument("--steps", type=_positive_int, default=None, help="cost evaluations (default: the backbone's)")
    p.add_argument("--backbone", default="auto", help="auto (default: vgg19), vgg19 or efficientnet_lite0")
    p.add_argument("--weights", default=None, help="vgg19: original (default), torchvision, random, or a weights file")
    p.add_argument("--pooling", default="max", choices=["max", "avg"], help="VGG19's pooling (default max)")
    p.add_argument("--device", default=None, help="cpu, cuda or mps (default: the best available)")
    p.add_argument(
        "--init",
        default="noise",
        choices=["noise", "content", "content+noise"],
        help="starting image: white noise (the lecture), the content image, or 0.6 noise + 0.4 content",
    )
    p.add_argument("--alpha", type=_non_negative_float, default=None, help="content weight")
    p.add_argument(
        "--beta",
        type=_non_negative_float,
        default=None,
        help="style weight (default: the backbone's at 256 px, grown with the pixels)",
    )
    p.add_argument("--tv-weight", type=_non_negative_float, default=None, help="total-variation weight")
    p.add_argument("--content-layer", default=None, help="layer for the content cost")
    p.add_argument(
        "--style-layers", nargs="+", default=None, metavar="LAYER", help="layers for the style cost (equal lambdas)"
    )
    p.add_argument("--optimizer", default="lbfgs", choices=["lbfgs", "adam"])
    p.add_argument("--seed", type=_seed, default=0, help="seed of the initial noise, 0..2**63-1")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--winograd",
        action="store_true",
        default=None,
        help="VGG19 on a CPU: Winograd convolutions in float32 (default: up to 384 px where bfloat16 is off)",
    )
    p.add_argument(
        "--float32",
        dest="bfloat16",
        action="store_false",
        default=None,
        help="run the network in float32 (default: bfloat16 where the CPU has it and it is faster, VGG19)",
    )


def _positive_float(text: str) -> float:
    value = _non_negative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be a number > 0, got 0")
    return value


def _add_control_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--colour",
        default=None,
        choices=["luminance", "histogram"],
        help="keep the content's colours: luminance-only transfer, or the style's colour histogram matched",
    )
    p.add_argument(
        "--style-weights",
        type=_non_negative_float,
        nargs="+",
        default=None,
        metavar="W",
        help="blend of several styles: one weight per style (default equal)",
    )
    p.add_argument(
        "--mask",
        nargs="+",
        default=None,
        metavar="PATH",
        help="one grayscale mask image per style, the content image's size: white where that style goes",
    )
    p.add_argument(
        "--style-scale",
        type=_positive_float,
        default=1.0,
        metavar="X",
        help="the style image's size relative to the output's (default 1; 2 gives strokes twice as large)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="course-nst", description="Neural Style Transfer, offline, for the course-nst notebooks.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("stylize", help="make an image with the content of one image and the style of another")
    p.add_argument("content", help="content image: a path or a sample name")
    p.add_argument("style", nargs="+", help="style image(s): paths or sample names")
    p.add_argument("-o", "--output", required=True, help="output image (.png or .jpg)")
    _add_transfer_options(p)
    _add_control_options(p)
    p.set_defaults(func=_cmd_stylize)

    p = sub.add_parser("demo", help=f"stylize the bundled '{DEMO_CONTENT}' photo with the '{DEMO_STYLE}' style")
    p.add_argument("-o", "--output-dir", default="out", help="directory for the result (default: out)")
    _add_transfer_options(p)
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("samples", help="list the bundled sample images")
    p.set_defaults(func=_cmd_samples)

    p = sub.add_parser("weights", help="show or fetch network weights")
    wsub = p.add_subparsers(dest="action", required=True, parser_class=_Parser)
    wsub.add_parser("status", help="which weights are present locally")
    d = wsub.add_parser("download", help="download weights (needs internet)")
    d.add_argument("name", help="vgg19")
    p.set_defaults(func=_cmd_weights)

    from .instructor import grading, release

    release.add_release_parser(sub)
    grading.add_grade_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        try:
            with sigterm_as_interrupt():
                args = build_parser().parse_args(argv)
                return int(args.func(args) or 0)
        except InputError as e:
            print(f"error: {str(e).splitlines()[0]}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            _ignore_interrupts()
            print("interrupted", file=sys.stderr)
            return 130
    except KeyboardInterrupt:  # a second Ctrl-C while reporting the first
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
