"""Winograd F(4x4, 3x3) convolutions for the style-transfer loop on the CPU (opt-in).

Part of the private fast path (:func:`course_nst._fast.fast_features`), used when a
:class:`course_nst.transfer.StyleTransferObjective` (or ``style_transfer``) is made
with ``winograd=True``; students' :meth:`Backbone.features` always runs the ordinary
``nn.Conv2d``. A 3x3 convolution with stride 1 and padding 1 costs
``2 * 9 * C_in * C_out`` FLOPs per output pixel when computed directly. Winograd's
minimal filtering algorithm (Lavin & Gray 2016, "Fast Algorithms for Convolutional
Neural Networks") computes a 4x4 block of outputs from a 6x6 block of inputs with 36
multiplications per channel pair instead of 16 * 9 = 144:

    Y = A^T [ (G g G^T) * (B^T d B) ] A

per 6x6 input tile ``d`` and 3x3 kernel ``g``, where ``*`` is an element-wise product
that, summed over the input channels, is 36 independent matrix products
``[tiles, C_in] @ [C_in, C_out]`` with 4x fewer FLOPs than the direct convolution.
The transforms ``B^T . B`` (input) and ``A^T . A`` (output) are memory-bound passes,
computed separably, a band of tile rows at a time so that their temporaries stay small.

The backward pass needs only the gradient with respect to the input (the weights are
frozen): the same steps transposed, in reverse order (output transform, the 36
products with ``U^T``, input transform with the overlapping tiles added up), so one
transformed kernel ``U = G g G^T`` serves both, and nothing else is kept for it.

**Why it is not the default.** ``U`` takes 36/9 = 4x the memory of the kernel and is
kept for the objective's life: for VGG19 up to conv5_1, ~170 MB. An evaluation at
128-256 px then peaks 20-40% above the textbook implementation's memory (which the
project promises not to exceed), while it runs 1.3-1.4x faster than the direct
convolutions (2.1-2.3x faster than the textbook; benchmarks/README.md). Recomputing
``U`` at each use instead costs 4-9 ms per 512x512 kernel, most of the gain.
Measured per layer shape on the development machine (2 threads, forward; the input
gradient is alike):

    C_in x C_out @ px   direct ms   Winograd ms     U
    128 x 128 @ 128      21.1        20.6 (1.02x)    2 MB
    128 x 256 @ 64       10.8         7.3 (1.48x)    5 MB
    256 x 256 @ 64       20.8        11.5 (1.81x)    9 MB
    256 x 256 @ 32        5.3         4.4 (1.21x)
    256 x 512 @ 32       10.4         5.6 (1.86x)   19 MB
    512 x 512 @ 64       83.9        37.7 (2.22x)   38 MB
    512 x 512 @ 32       21.2         9.9 (2.14x)
    512 x 512 @ 16        5.6         4.1 (1.37x)
    512 x 512 @ 8         1.7         2.5 (0.67x)
    128 x 128 @ 256      85           201 (0.42x)    (the tiles no longer fit the caches)
    64 x 64 @ 256        21           42  (0.50x)    (the transforms cost more than they save)

hence the rules of ``plan``. (F(2x2, 3x3), with 16/9 of the kernel's memory, was
measured too: 1.3-1.5x on the 512-channel layers and slower than direct on the
others, not enough to be worth keeping.)

Accuracy: the interpolation points are 0, +-1, +-2 and infinity, so in float32 the
result differs from the direct convolution by about 1e-5 of the largest output (the
direct convolution's own float32 error is about 1e-6); ``tests/test_winograd.py``
checks values and gradients against float64. Only for float32 CPU tensors (on a
GPU, cuDNN picks its own algorithms).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

# F(4x4, 3x3): output tile m = 4, input tile a = m + 3 - 1 = 6.
M, A = 4, 6
_BT = torch.tensor(
    [
        [4, 0, -5, 0, 1, 0],
        [0, -4, -4, 1, 1, 0],
        [0, 4, -4, -1, 1, 0],
        [0, -2, -1, 2, 1, 0],
        [0, 2, -1, -2, 1, 0],
        [0, 4, 0, -5, 0, 1],
    ],
    dtype=torch.float64,
)
_G = torch.tensor(
    [
        [1 / 4, 0, 0],
        [-1 / 6, -1 / 6, -1 / 6],
        [-1 / 6, 1 / 6, -1 / 6],
        [1 / 24, 1 / 12, 1 / 6],
        [1 / 24, -1 / 12, 1 / 6],
        [0, 0, 1],
    ],
    dtype=torch.float64,
)
_AT = torch.tensor(
    [
        [1, 1, 1, 1, 1, 0],
        [0, 1, -1, 2, -2, 0],
        [0, 1, 1, 4, 4, 0],
        [0, 1, -1, 8, -8, 1],
    ],
    dtype=torch.float64,
)

# The rules of ``plan`` (see the table above):
# * at least MIN_CHANNELS channels in and out (fewer: the transforms cost more than
#   the 4x fewer multiplications save; at 128 it is about even);
# * at least C_in * C_out / TILE_WORK tiles of 4x4 outputs (U is read whole for every
#   band of tiles: a 512x512 kernel needs 16 tiles, i.e. 16x16 px);
# * activations of at most MAX_ELEMENTS = N * H * W * max(C_in, C_out) values.
MIN_CHANNELS = 128
TILE_WORK = 16384
MAX_ELEMENTS = 1 << 22
# The image is processed in bands of tile rows (see _bands).
BAND_FLOATS = 1 << 20
MIN_BAND_TILES = 64


def plan(conv: nn.Conv2d, x: Tensor) -> bool:
    """Whether ``conv(x)`` is computed in the Winograd form: a dense 3x3, stride-1,
    padding-1 float32 convolution on the CPU, of a shape for which it is faster."""
    if x.dim() != 4:
        return False
    N, _, H, W = x.shape
    c_in, c_out = conv.in_channels, conv.out_channels
    tiles = N * (-(-H // M)) * (-(-W // M))
    return (
        min(c_in, c_out) >= MIN_CHANNELS
        and tiles * TILE_WORK >= c_in * c_out
        and N * H * W * max(c_in, c_out) <= MAX_ELEMENTS
        and conv.kernel_size == (3, 3)
        and conv.stride == (1, 1)
        and conv.padding == (1, 1)
        and conv.dilation == (1, 1)
        and conv.groups == 1
        and conv.padding_mode == "zeros"
        and x.device.type == "cpu"
        and x.dtype == torch.float32
        and conv.weight.dtype == torch.float32
    )


def transform_weights(weight: Tensor) -> Tensor:
    """The kernel ``[C_out, C_in, 3, 3]`` in the Winograd domain: ``U[a b] = G g G^T``,
    ``[36, C_out, C_in]`` (4x the kernel's memory). The forward pass multiplies by
    ``U[ab]^T``, the input gradient by ``U[ab]`` (the transposed linear map), so one
    copy serves both."""
    c_out, c_in = weight.shape[:2]
    gg = torch.kron(_G, _G).to(dtype=weight.dtype, device=weight.device)  # [36, 9]
    return (gg @ weight.detach().reshape(c_out * c_in, 9).t()).view(A * A, c_out, c_in)


def _bands(n: int, th: int, tw: int, width: int) -> list[tuple[int, int]]:
    """Rows of tiles ``(first, count)`` processed together: about ``BAND_FLOATS``
    transformed values at a time (so the temporaries stay small and in cache), but
    at least ``MIN_BAND_TILES`` tiles (each band reads all of ``U``)."""
    per_row = A * A * n * tw * width
    rows = max(BAND_FLOATS // per_row, -(-MIN_BAND_TILES // (n * tw)), 1)
    count = -(-th // rows)
    rows = -(-th // count)  # equal bands
    return [(t0, min(rows, th - t0)) for t0 in range(0, th, rows)]


def conv3x3(x: Tensor, u: Tensor, bias: Tensor | None = None) -> Tensor:
    """``conv2d(x, w, bias, padding=1)`` for ``u = transform_weights(w)``.

    ``x``: ``[N, C, H, W]``; the result is ``[N, K, H, W]`` in channels_last memory.
    No autograd (see :func:`conv3x3_frozen`).
    """
    N, C, H, W = x.shape
    K = u.shape[1]
    bt = _BT.to(dtype=x.dtype, device=x.device)
    at = _AT.to(dtype=x.dtype, device=x.device)
    th, tw = -(-H // M), -(-W // M)  # tiles down and across
    Hp, Wp = th * M + 2, tw * M + 2
    # NHWC, zero-padded so that the 6x6 tiles (stride 4) cover the image
    xp = nn.functional.pad(x.permute(0, 2, 3, 1), (0, 0, 1, Wp - W - 1, 1, Hp - H - 1)).contiguous()
    out = torch.empty((N, K, H, W), dtype=x.dtype, device=x.device, memory_format=torch.channels_last)
    nhwc = out.permute(0, 2, 3, 1)  # a contiguous view of out's memory
    X = tw * A * C
    for t0, nt in _bands(N, th, tw, max(C, K)):
        hb, P = M * nt + 2, N * nt * tw
        xb = xp[:, M * t0 : M * t0 + hb]  # the input rows of this band's tiles
        # input transform B^T d B, separably: along each row (tiles u, taps j), ...
        rows = xb.as_strided((N, hb, tw, A, C), (xb.stride(0), Wp * C, M * C, C, 1))
        v = torch.matmul(bt, rows)  # [N, hb, tw, 6 (b), C]
        # ... then down each column (tiles t, taps i)
        v = torch.matmul(bt, v.as_strided((N, nt, A, X), (hb * X, M * X, X, 1)))  # [N, nt, 6 (a), tw 6 C]
        v = v.view(N, nt, A, tw, A, C).permute(2, 4, 0, 1, 3, 5).reshape(A * A, P, C)
        # the 36 matrix products over the input channels
        m = torch.bmm(v, u.transpose(1, 2))  # [36 (a, b), P, K]
        del v
        # output transform A^T m A, separably
        m = torch.matmul(at, m.view(A, A * P * K)).view(M, A, P * K)  # [4 (i), 6 (b), P K]
        y = torch.matmul(at, m).view(M, M, N, nt, tw, K).permute(2, 3, 0, 4, 1, 5)  # [N, nt, i, tw, j, K]
        del m
        r0, r1 = M * t0, min(M * (t0 + nt), H)
        dst = nhwc[:, r0:r1]
        if r1 - r0 == M * nt and M * tw == W:  # whole tiles: one copy from the tiles into place
            dst = dst.view(N, nt, M, tw, M, K)
        else:  # the last tiles stick out of the image: crop them
            y = y.reshape(N, M * nt, M * tw, K)[:, : r1 - r0, :W]
        if bias is None:
            dst.copy_(y)
        else:
            torch.add(y, bias, out=dst)
        del y
    return out


def conv3x3_input_grad(grad: Tensor, u: Tensor) -> Tensor:
    """The gradient of ``conv3x3(x, u, bias)`` with respect to ``x``, given the gradient
    of its output ``[N, K, H, W]``: every step of ``conv3x3`` transposed, in reverse
    order (result ``[N, C, H, W]``, channels_last)."""
    N, K, H, W = grad.shape
    C = u.shape[2]
    bt = _BT.to(dtype=grad.dtype, device=grad.device)
    at = _AT.to(dtype=grad.dtype, device=grad.device)
    th, tw = -(-H // M), -(-W // M)
    Hp, Wp = th * M + 2, tw * M + 2
    gy_all = grad.permute(0, 2, 3, 1)  # NHWC; zeros where the last tiles stick out
    if th * M != H or tw * M != W:
        gy_all = nn.functional.pad(gy_all, (0, 0, 0, tw * M - W, 0, th * M - H))
    g_in = grad.new_zeros((N, Hp, Wp, C))  # the gradient of the padded input
    X = tw * A * C
    for t0, nt in _bands(N, th, tw, max(C, K)):
        hb, P = M * nt + 2, N * nt * tw
        # the output's 4x4 tiles, [4 (i), 4 (j), P K]
        g = gy_all[:, M * t0 : M * (t0 + nt)].reshape(N, nt, M, tw, M, K)
        g = g.permute(2, 4, 0, 1, 3, 5).reshape(M, M, P * K)
        # output transform, transposed: A (.) A^T
        g = torch.matmul(at.t(), g)  # [4 (i), 6 (b), P K]
        g = torch.matmul(at.t(), g.reshape(M, A * P * K)).view(A * A, P, K)  # [36, P, K]
        # the 36 matrix products, transposed
        g = torch.bmm(g, u)  # [36, P, C]
        # input transform, transposed: down the columns, adding where 6x6 tiles overlap
        g = g.view(A, A, N, nt, tw, C).permute(2, 3, 0, 4, 1, 5).reshape(N, nt, A, X)
        g = torch.matmul(bt.t(), g)  # [N, nt, 6 (i), tw 6 C]
        cols = g.new_empty((N, hb, X))
        cols[:, : M * nt].view(N, nt, M, X).copy_(g[:, :, :M])
        cols[:, M * nt :].zero_()
        # rows 4t + 4 and 4t + 5 of tile t are rows 0 and 1 of tile t + 1
        cols.as_strided((N, nt, A - M, X), (hb * X, M * X, X, 1), M * X).add_(g[:, :, M:])
        # ... and along the rows, into this band's rows of the input gradient
        g = torch.matmul(bt.t(), cols.view(N, hb, tw, A, C))  # [N, hb, tw, 6 (j), C]
        del cols
        dst = g_in[:, M * t0 : M * t0 + hb]
        dst[:, :, : M * tw].view(N, hb, tw, M, C).add_(g[:, :, :, :M])
        dst.as_strided((N, hb, tw, A - M, C), (Hp * Wp * C, Wp * C, M * C, C, 1), dst.storage_offset() + M * C).add_(
            g[:, :, :, M:]
        )
        del g
    out = torch.empty((N, C, H, W), dtype=grad.dtype, device=grad.device, memory_format=torch.channels_last)
    out.permute(0, 2, 3, 1).copy_(g_in[:, 1 : H + 1, 1 : W + 1])  # the padding has no gradient
    return out


class _FrozenConv3x3(torch.autograd.Function):
    """3x3 convolution with frozen weights: Winograd forward, Winograd input gradient."""

    @staticmethod
    def forward(ctx, x: Tensor, u: Tensor, bias: Tensor | None) -> Tensor:
        ctx.u = u  # the weights only: no activation is kept for the backward
        return conv3x3(x, u, bias)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor):
        return conv3x3_input_grad(grad, ctx.u), None, None


def conv3x3_frozen(x: Tensor, u: Tensor, bias: Tensor | None) -> Tensor:
    """Winograd ``conv2d(x, w, bias, padding=1)`` with ``u = transform_weights(w)``,
    whose backward gives ``x`` its gradient (and nothing to ``w`` or ``bias``, which
    must not require grad)."""
    if not x.requires_grad:
        return conv3x3(x, u, bias)
    return _FrozenConv3x3.apply(x, u, bias)
