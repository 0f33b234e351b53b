"""Speed and memory of ``top_patches`` against a naive store-everything-and-sort baseline.

Both methods run in the same invocation, on the same images (224 px by default),
for efficientnet_lite0 (pretrained) and VGG19 (random weights: the geometry and
the cost are the same as with real weights). Each measurement runs in its own
fresh process so that its peak memory (max RSS) is its own.

    .venv/bin/python benchmarks/bench_patches.py            # both backbones
    .venv/bin/python benchmarks/bench_patches.py --backbones efficientnet_lite0 --images 64
    .venv/bin/python benchmarks/bench_patches.py --focus      # driving_box: window against whole image

``--focus`` times :func:`course_nst.patches.driving_box` (the gradient of one
position on a window of the image around its receptive field, as notebook 01
computes it for the deep layers) against the same gradient on the whole image,
checks that both give the same square, and prints the speed ratio.

The naive baseline keeps every activation of every image at every layer, then,
per unit, sorts all of its (image, position) activations and walks down the
sorted list taking the first position of each new image until it has k. It gives
the same top-k (checked below) at a memory cost that grows with the number of
images, where ``top_patches`` keeps O(units x k) numbers and a few images.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import sys
import time

LAYERS = {
    "efficientnet_lite0": ["block1_1", "block2_2", "block3_2", "block4_3", "block5_3"],
    "vgg19": ["conv1_2", "conv2_2", "conv3_1", "conv4_2", "conv5_1"],
}


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def naive_top_patches(backbone, images, layers, k=9, batch_size=8):
    """Store every activation, then sort: {layer: {unit: [(value, image, row, col), ...]}}."""
    import torch

    store = {n: [] for n in layers}
    with torch.inference_mode():
        for i in range(0, len(images), batch_size):
            feats = backbone.features(torch.cat(images[i : i + batch_size]), layers)
            for n in layers:
                store[n].append(feats[n].clone())
    out = {}
    for n in layers:
        a = torch.cat(store[n])  # [N, C, h, w]
        N, C, h, w = a.shape
        flat = a.permute(1, 0, 2, 3).reshape(C, N * h * w)
        order = torch.sort(flat, dim=1, descending=True, stable=True).indices
        res = {}
        for u in range(C):
            seen, entries = set(), []
            for idx in order[u].tolist():
                img, pos = divmod(idx, h * w)
                if img in seen:
                    continue
                seen.add(img)
                entries.append((float(flat[u, idx]), img, pos // w, pos % w))
                if len(entries) == k:
                    break
            res[u] = entries
        out[n] = res
    return out


def _child(name, method, n_images, size, batch_size, threads, queue):
    import torch

    torch.set_num_threads(threads)
    from course_nst.backbones import load_backbone
    from course_nst.patches import image_set, top_patches_many

    bb = load_backbone(name, weights="random" if name == "vgg19" else None, device="cpu")
    images = image_set(n_images, size, seed=0)
    layers = LAYERS[name]
    with torch.inference_mode():  # warm-up: one batch through the network
        bb.features(torch.cat(images[:batch_size]), layers)
    base = _peak_mb()
    t0 = time.perf_counter()
    if method == "top_patches":
        res = top_patches_many(bb, images, layers, k=9, batch_size=batch_size)
        entries = {n: {u: res[n].entries(u) for u in res[n].units} for n in layers}
    else:
        entries = naive_top_patches(bb, images, layers, k=9, batch_size=batch_size)
    dt = time.perf_counter() - t0
    queue.put(dict(seconds=dt, peak=_peak_mb(), base=base, entries=entries))


def run(name, method, args):
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(
        target=_child, args=(name, method, args.images_for(name), args.size, args.batch_size, args.threads, q)
    )
    p.start()
    out = q.get()
    p.join()
    return out


def same_topk(a, b, tol=1e-4):
    for n in a:
        for u in a[n]:
            x, y = a[n][u], b[n][u]
            if [e[1:] for e in x] != [e[1:] for e in y]:
                return False
            if any(abs(e[0] - f[0]) > tol * max(1.0, abs(f[0])) for e, f in zip(x, y, strict=True)):
                return False
    return True


def focus(args):
    """driving_box on its window against the whole-image gradient, VGG19 relu4_1 and relu5_1."""
    import torch

    torch.set_num_threads(args.threads)
    from course_nst.backbones import load_backbone
    from course_nst.patches import driving_box, photo_set

    bb = load_backbone("vgg19", device="cpu")  # original weights: real activations, real gradients
    images = photo_set(8, args.size)
    print(f"driving_box, VGG19 (original weights), {args.size} px photos, {args.threads} threads")
    for layer in ("relu4_1", "relu5_1"):
        cases = []
        with torch.inference_mode():
            for x in images:
                a = bb.features(x, [layer])[layer][0]
                unit = int(a.amax(dim=(1, 2)).argmax())
                r, c = divmod(int(a[unit].argmax()), a.shape[-1])
                cases.append((x, unit, r, c))
        t0 = time.perf_counter()
        boxes = [driving_box(bb, x, layer, u, r, c) for x, u, r, c in cases]
        t_window = time.perf_counter() - t0
        t0 = time.perf_counter()
        for x, u, r, c in cases:
            g = x.clone().requires_grad_(True)
            bb.features(g, [layer])[layer][0, u, r, c].backward()
        t_whole = time.perf_counter() - t0
        print(
            f"  {layer}: {len(cases)} positions, window {t_window / len(cases):.3f} s each, whole image "
            f"{t_whole / len(cases):.3f} s each: {t_whole / t_window:.2f}x faster; "
            f"squares {sorted(b[2] for b in boxes)} px"
        )


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backbones", nargs="+", default=["efficientnet_lite0", "vgg19"])
    ap.add_argument("--images", type=int, default=None, help="images per run (default: 48 lite0, 16 vgg19)")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--focus", action="store_true", help="time driving_box (window vs whole image) instead")
    args = ap.parse_args(argv)
    if args.focus:
        focus(args)
        return
    args.images_for = lambda name: args.images or (48 if name == "efficientnet_lite0" else 16)
    print(
        f"top_patches vs naive (store all + sort), {args.size} px, batch {args.batch_size}, "
        f"{args.threads} threads, k=9, all units of 5 layers"
    )
    for name in args.backbones:
        n = args.images_for(name)
        r_top = run(name, "top_patches", args)
        r_naive = run(name, "naive", args)
        print(f"\n{name} ({n} images; layers {', '.join(LAYERS[name])})")
        for label, r in (("top_patches", r_top), ("naive", r_naive)):
            print(
                f"  {label:12s} {n / r['seconds']:7.2f} images/s   peak RSS {r['peak']:7.0f} MB "
                f"(+{r['peak'] - r['base']:.0f} MB over the loaded model after one warm-up batch)"
            )
        print(
            f"  speed ratio top_patches/naive: {r_naive['seconds'] / r_top['seconds']:.2f}x; "
            f"same top-k: {same_topk(r_top['entries'], r_naive['entries'])}"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
