"""Time each control of ``style_transfer`` against a plain run measured in the same process.

Each configuration is one ``style_transfer`` call with a fixed number of cost evaluations
(``tol=0``: no early stop; one stage, ``scales=(1.0,)``), on the same content and style:

  plain              one style, no control (the reference)
  colour=luminance   luminance matching + the run on gray images + recombination
  colour=histogram   colour histogram matching of the style + the run
  2 styles blended   two style images, style_weights (0.5, 0.5): one Gram target per layer
  2 styles + masks   two style images, two half masks: two guided Gram matrices per layer
  style_scale=2      the style image twice the output's size (its targets cost more once)

The configurations run in alternating rounds (plain, luminance, ..., plain, luminance, ...)
so that a slow moment on a shared machine hits all of them; the table reports the median
seconds per run and the ratio to the plain run's median (and of the minimums).

    python benchmarks/bench_controls.py [--backbone vgg19] [--size 128] [--steps 30] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from course_nst import load_backbone, samples, style_transfer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="vgg19")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    load_before = os.getloadavg()  # a shared machine: say how loaded it was
    backbone = load_backbone(args.backbone, device=args.device)
    content = samples.load("chelsea", max_size=args.size)
    s1, s2 = samples.load("swirls", max_size=args.size), samples.load("shapes", max_size=args.size)
    H, W = content.shape[-2:]
    left = torch.zeros(1, 1, H, W)
    left[..., : W // 2] = 1
    configs = {
        "plain": dict(style=s1),
        "colour=luminance": dict(style=s1, colour="luminance"),
        "colour=histogram": dict(style=s1, colour="histogram"),
        "2 styles blended": dict(style=[s1, s2], style_weights=[0.5, 0.5]),
        "2 styles + masks": dict(style=[s1, s2], masks=[left, 1 - left]),
        "style_scale=2": dict(style=s1, style_scale=2.0),
    }
    common = dict(backbone=backbone, steps=args.steps, scales=(1.0,), tol=0.0, progress=False, seed=0)
    style_transfer(content, s1, **{**common, "steps": 2})  # warm up (first-call allocations, caches)
    times: dict[str, list[float]] = {name: [] for name in configs}
    for _ in range(args.rounds):
        for name, kw in configs.items():
            t0 = time.perf_counter()
            r = style_transfer(content, kw["style"], **common, **{k: v for k, v in kw.items() if k != "style"})
            times[name].append(time.perf_counter() - t0)
            assert len(r.history) == args.steps, (name, len(r.history))
            print(f"round {len(times[name])}: {name:18s} {times[name][-1]:7.2f} s", flush=True)  # partial results

    load_after = os.getloadavg()
    plain_med, plain_min = statistics.median(times["plain"]), min(times["plain"])
    print(
        f"{args.backbone}, {W}x{H} px, {args.steps} evaluations per run, {args.rounds} rounds, "
        f"{torch.get_num_threads()} threads; load average (1, 5, 15 min) before "
        f"{' '.join(f'{v:.1f}' for v in load_before)}, after {' '.join(f'{v:.1f}' for v in load_after)}"
    )
    print(f"{'configuration':18s} {'median s':>9s} {'min s':>7s} {'ratio':>6s} {'(min)':>6s}")
    for name, ts in times.items():
        med, lo = statistics.median(ts), min(ts)
        print(f"{name:18s} {med:9.2f} {lo:7.2f} {med / plain_med:6.2f} {lo / plain_min:6.2f}")


if __name__ == "__main__":
    main()
