"""Time to a finished image: the default ``style_transfer`` against the textbook implementation.

What a user waits for is a finished picture, so this times whole runs, from white noise to
the final image, at the sizes people use:

*ours*      ``style_transfer(content, style, backbone=..., size=..., init="noise")`` with every
            default: the backbone's layers, alpha, beta and tv_weight, the coarse-to-fine
            schedule, early stopping, bfloat16 or Winograd where each is on by default.
*textbook*  the PyTorch neural-style tutorial's design (``Baseline`` in bench_transfer.py: an
            ``nn.Sequential`` copy of the network with a normalisation module and loss modules,
            parameters not frozen), the same weights, layers, alpha, beta and tv_weight, and
            the tutorial's optimiser: ``torch.optim.LBFGS([image])`` with its default settings,
            the image clamped to [0, 1] in the closure, 300 evaluations at full size.

``--impls`` adds ablations of ours, to say what bought what: *one-stage* is ours without coarse
to fine (every evaluation at full size), *float32* ours with ``bfloat16=False`` (the network
in float32, with Winograd's convolutions where that is the default: <= 384 px on a CPU),
*flip-winograd* the float32 one with Winograd switched the other way.

Both start from the same white noise (seed 0). The final image of each is then measured
with the same cost: our objective at full size (J, its content and style parts); lower is
better. Each run is a fresh child process; ``peak MB`` is its resident-memory high-water
mark above its RSS after the backbone and the images were loaded (``VmHWM`` after
``/proc/self/clear_refs``). ``--memory-only`` measures just that for three evaluations of
each (for sizes too large to run whole on a laptop, e.g. 1024 px).

    .venv/bin/python benchmarks/bench_time_to_image.py                       # vgg19 256 px
    .venv/bin/python benchmarks/bench_time_to_image.py --backbones vgg19 efficientnet_lite0 --sizes 256 512
    .venv/bin/python benchmarks/bench_time_to_image.py --memory-only --sizes 512 1024
    .venv/bin/python benchmarks/bench_time_to_image.py --save out/bench     # also the images
    .venv/bin/python benchmarks/bench_time_to_image.py --impls textbook ours one-stage float32  # what bought what
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_transfer import Baseline, make_ours, run_in_child, status_mb

CONTENT, STYLE = "chelsea", "swirls"
IMPLS = ("textbook", "ours", "one-stage", "float32", "flip-winograd")


def peak_rss_reset() -> float:
    """Reset the RSS high-water mark (Linux: 5 into clear_refs); the RSS now."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return status_mb("VmRSS") * 2**20


def _inputs(name: str, size: int):
    from course_nst import load_backbone, samples
    from course_nst.images import resize

    bb = load_backbone(name, device="cpu")
    C = resize(samples.load(CONTENT), size)
    S = resize(samples.load(STYLE), tuple(C.shape[-2:]))  # the tutorial takes images of one size
    return bb, C, S


def _measure_final(bb, C, S, image):
    """J of ``image`` with our objective at full size, in float32 (the same cost for all)."""
    objective = make_ours(bb, C, S)[2]  # built exactly as style_transfer builds it
    with torch.inference_mode():
        return {k: float(v) for k, v in objective(image).items()}


def run_ours(bb, C, S, memory_only: bool, variant: str = "ours"):
    from course_nst import style_transfer

    steps, scales, winograd, bfloat16 = None, None, None, None  # the defaults
    if memory_only:  # three evaluations at the final size only: the peak is there
        steps, scales = 3, (1.0,)
    if variant == "one-stage":
        scales = (1.0,)
    elif variant in ("float32", "flip-winograd"):
        bfloat16 = False
        if variant == "flip-winograd":  # the opposite of float32's default
            winograd = not (bb.device.type == "cpu" and max(C.shape[-2:]) <= 384)
    r = style_transfer(
        C,
        S,
        backbone=bb,
        init="noise",
        seed=0,
        progress=False,
        steps=steps,
        scales=scales,
        tol=1e-3,
        winograd=winograd,
        bfloat16=bfloat16,
    )
    return r.image, len(r.history), sum(rec["scale"] ** 2 for rec in r.history), r.stopped


def run_textbook(bb, C, S, memory_only: bool, evaluations: int = 300):
    from course_nst.transfer import initial_image

    d = bb.defaults
    base = Baseline(
        bb, C, S, d.content_layer, dict(d.style_layers), d.alpha, d.beta_for(tuple(C.shape[-2:])), d.tv_weight
    )
    img = initial_image("noise", C, tuple(C.shape[-2:]), 0).requires_grad_(True)
    n = [0]
    limit = 3 if memory_only else evaluations
    # the tutorial's optimiser with its default settings; for the memory alone, three evaluations
    opt = torch.optim.LBFGS([img], max_iter=limit) if memory_only else torch.optim.LBFGS([img])

    def closure():
        with torch.no_grad():
            img.clamp_(0, 1)
        opt.zero_grad()
        loss = base(img)
        loss.backward()
        n[0] += 1
        return loss

    while n[0] < limit:
        opt.step(closure)
    with torch.no_grad():
        img.clamp_(0, 1)
    return img.detach(), n[0], float(n[0]), None


def child(name, size, which, memory_only, save, queue):
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    bb, C, S = _inputs(name, size)
    base = peak_rss_reset()
    t0 = time.perf_counter()
    if which == "textbook":
        image, n, full_equiv, stopped = run_textbook(bb, C, S, memory_only)
    else:
        image, n, full_equiv, stopped = run_ours(bb, C, S, memory_only, which)
    seconds = time.perf_counter() - t0
    peak = status_mb("VmHWM") * 2**20 - base
    final = _measure_final(bb, C, S, image)
    if save:
        from course_nst.images import save_image

        save_image(image, Path(save) / f"{name}_{size}_{which}.png")
    queue.put(dict(seconds=seconds, n=n, full=full_equiv, stopped=stopped, peak=peak, **final))


def measure(name, size, which, memory_only, save):
    return run_in_child(child, name, size, which, memory_only, save)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backbones", nargs="+", default=["vgg19"], choices=["vgg19", "efficientnet_lite0"])
    ap.add_argument("--sizes", nargs="+", type=int, default=[256])
    ap.add_argument("--memory-only", action="store_true", help="peak memory of three evaluations, no whole runs")
    ap.add_argument("--save", default=None, help="folder to save the final images in")
    ap.add_argument("--impls", nargs="+", default=["textbook", "ours"], choices=IMPLS, help="what to run (in order)")
    args = ap.parse_args()
    if args.save:
        Path(args.save).mkdir(parents=True, exist_ok=True)
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"{os.environ.get('BENCH_THREADS', '2')} threads; content {CONTENT}, style {STYLE}, from white noise"
    )
    head = (
        f"{'backbone':18s} {'px':>4s} {'impl':18s} {'seconds':>8s} {'evals':>6s} {'full-size eq.':>13s} "
        f"{'J (same cost)':>13s} {'J_content':>10s} {'J_style':>10s} {'peak MB':>8s}  stopped"
    )
    print(head)
    for name in args.backbones:
        for size in args.sizes:
            rows = {}
            for which in args.impls:
                r = rows[which] = measure(name, size, which, args.memory_only, args.save)
                print(
                    f"{name:18s} {size:4d} {which:18s} {r['seconds']:8.1f} {r['n']:6d} {r['full']:13.1f} "
                    f"{r['J']:13.4g} {r['J_content']:10.4g} {r['J_style']:10.4g} {r['peak'] / 2**20:8.0f}  "
                    f"{r['stopped']}",
                    flush=True,
                )
            # each row: what the second bought over the first (seconds first/second, J second/first, MB second - first)
            pairs = (("textbook", "ours"), ("one-stage", "ours"), ("float32", "ours"), ("flip-winograd", "float32"))
            for ref, other in pairs:
                if ref in rows and other in rows:
                    t, o = rows[ref], rows[other]
                    print(
                        f"{'':18s} {'':4s} {ref + '/' + other:18s} {t['seconds'] / o['seconds']:7.2f}x {'':6s} "
                        f"{'':13s} {o['J'] / t['J']:12.3f}x {'':10s} {'':10s} {(o['peak'] - t['peak']) / 2**20:+8.0f}",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
