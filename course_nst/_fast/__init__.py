"""The private fast path of the optimisation loop.

:func:`fast_features` computes the same activations as :meth:`Backbone.features
<course_nst.backbones.Backbone.features>` (to float32 rounding), faster, for
:class:`course_nst.transfer.StyleTransferObjective`. Students read and call
``Backbone.features``; the backbone modules stay the plain, readable networks, and this
package knows nothing about any one network: it works on the standard modules they are
built from.

* The tensors are ``channels_last`` (NHWC strides, same shape), so oneDNN runs every
  convolution, forward and backward, without reordering its input and output; the
  activations returned are channels_last too (``costs.gram_matrix`` takes them without
  a copy).
* A ReLU whose input nobody asked for runs in place (one activation fewer to allocate
  and write).
* Each frozen convolution runs with a cached channels_last copy of its weight; a
  ``Sequential(Conv2d, BatchNorm2d, ...)`` in eval mode runs with the BatchNorm folded
  into the convolution (``w * gamma / sqrt(var + eps)``, bias ``beta - mean * gamma /
  sqrt(var + eps)``). The copies live in a :class:`WeightCache` and are rebuilt when a
  parameter changes (its version counter or storage).
* A module with a ``forward_with(apply, x)`` method (a block with a residual, say) is
  run through it, with this path's ``apply`` for its sub-modules.
* With ``winograd=True``, on the CPU, the dense 3x3 convolutions with many channels
  (VGG19's from conv2_2 on) are computed in Winograd's F(4x4, 3x3) form, forward and
  backward (:mod:`course_nst._fast.winograd`).
* With ``bfloat16=True`` the network runs in bfloat16 (8 bits of mantissa instead of
  float32's 24) from the preprocessed image to the last layer asked for, and the layers
  asked for are returned as float32: the costs, their sums and the pixels' gradient
  stay float32. A CPU with bfloat16 instructions (AVX512-BF16, AMX) runs VGG19's
  convolutions about twice as fast that way (a whole run, with its float32 costs, about
  1.6x); the activations differ from float32's by about 0.5% (relative), and a whole run
  ends within about 1% of float32's J (``benchmarks/README.md``). :func:`bfloat16_pays`
  says where it is the default.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor, nn

from . import winograd as _winograd

__all__ = ["WeightCache", "bfloat16_pays", "fast_apply", "fast_features", "native_bfloat16"]

_Key = tuple[Any, ...]


class WeightCache:
    """Derived copies of frozen parameters (channels_last, BN-folded, Winograd-transformed),
    each kept under ``(kind, module)`` with the parameters' version stamps."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, int], tuple[nn.Module, _Key, Any]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def kinds(self) -> set[str]:
        """The kinds of copies held (``"channels_last"``, ``"winograd"``)."""
        return {kind for kind, _ in self._entries}

    def get(self, kind: str, conv: nn.Conv2d, bn: nn.BatchNorm2d | None, build: Callable[[], Any]) -> Any:
        """``build()``, cached, rebuilt when a parameter of ``conv`` or ``bn`` changes."""
        parts: list[Tensor | None] = [conv.weight, conv.bias]
        if bn is not None:
            parts += [bn.weight, bn.bias, bn.running_mean, bn.running_var]
        key: _Key = tuple(None if t is None else (t._version, t.data_ptr(), t.device, t.dtype) for t in parts)
        key += (None if bn is None else bn.eps,)
        hit = self._entries.get((kind, id(conv)))
        if hit is not None and hit[0] is conv and hit[1] == key:
            return hit[2]
        # Plain tensors even when called under inference_mode: the convolution saves its
        # weight for the backward pass, and inference tensors cannot be saved.
        with torch.inference_mode(False), torch.no_grad():
            value = build()
        self._entries[(kind, id(conv))] = (conv, key, value)  # holding conv keeps its id from being reused
        return value


def native_bfloat16() -> bool:
    """Whether this CPU has bfloat16 instructions (AVX512-BF16 or AMX); without them
    oneDNN emulates bfloat16, which is slower than float32."""
    cpu = getattr(torch, "cpu", None)
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(cpu, name, lambda: False)()) for name in checks)


def bfloat16_pays(backbone: Any) -> bool:
    """Whether computing ``backbone`` in bfloat16 is faster: on a CPU with bfloat16
    instructions, for a network of dense convolutions only (VGG19: a whole default run
    about 1.6x sooner at 256 and 512 px). Depthwise convolutions (efficientnet_lite0)
    are slower in bfloat16 and lose more precision (activations 2% off, against 0.5%)."""
    convs = [m for m in backbone.modules() if isinstance(m, nn.Conv2d)]
    dense = bool(convs) and all(m.groups == 1 for m in convs)
    return backbone.device.type == "cpu" and dense and native_bfloat16()


def _frozen(module: nn.Module) -> bool:
    return not any(p.requires_grad for p in module.parameters())


def _conv_params(
    conv: nn.Conv2d, bn: nn.BatchNorm2d | None, cache: WeightCache, dtype: torch.dtype = torch.float32
) -> tuple[Tensor, Tensor | None]:
    """``conv``'s weight (with ``bn`` folded in) as channels_last, and its bias, in ``dtype``; cached."""

    def build() -> tuple[Tensor, Tensor | None]:
        w, b = conv.weight, conv.bias
        if bn is not None:
            assert bn.running_var is not None and bn.running_mean is not None
            scale = bn.weight * torch.rsqrt(bn.running_var + bn.eps)
            shift = bn.bias - bn.running_mean * scale
            w = w * scale.view(-1, 1, 1, 1)
            b = shift if b is None else b * scale + shift
        b = None if b is None else b.to(dtype)
        return w.to(dtype).contiguous(memory_format=torch.channels_last), b

    kind = "channels_last" if dtype == torch.float32 else f"channels_last {dtype}"
    result: tuple[Tensor, Tensor | None] = cache.get(kind, conv, bn, build)
    return result


def _conv(conv: nn.Conv2d, x: Tensor, w: Tensor, b: Tensor | None) -> Tensor:
    return nn.functional.conv2d(x, w, b, conv.stride, conv.padding, conv.dilation, conv.groups)


def _foldable(module: nn.Sequential) -> bool:
    if len(module) < 2 or not isinstance(module[0], nn.Conv2d) or type(module[1]) is not nn.BatchNorm2d:
        return False
    conv, bn = module[0], module[1]
    return (
        _frozen(module)
        and not bn.training
        and bn.running_var is not None
        and bn.affine
        and conv.padding_mode == "zeros"
    )


def fast_apply(module: nn.Module, x: Tensor, cache: WeightCache, winograd: bool = False) -> Tensor:
    """``module(x)`` on a channels_last ``x``, with cached channels_last / BN-folded weights."""
    # (weights that require grad, i.e. a backbone someone unfroze, take the modules' own path)
    if isinstance(module, nn.Conv2d) and module.padding_mode == "zeros" and _frozen(module):
        if winograd and _winograd.plan(module, x):
            u = cache.get("winograd", module, None, lambda: _winograd.transform_weights(module.weight))
            return _winograd.conv3x3_frozen(x, u, module.bias)
        return _conv(module, x, *_conv_params(module, None, cache, x.dtype))
    if isinstance(module, nn.Sequential):
        conv, bn = (module[0], module[1]) if len(module) >= 2 else (None, None)
        if _foldable(module) and isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
            y = _conv(conv, x, *_conv_params(conv, bn, cache, x.dtype))
            for rest in list(module)[2:]:
                y = fast_apply(rest, y, cache, winograd)
            return y
        for sub in module:
            x = fast_apply(sub, x, cache, winograd)
        return x
    forward_with = getattr(module, "forward_with", None)
    if forward_with is not None:
        y = forward_with(lambda m, t: fast_apply(m, t, cache, winograd), x)
        return y
    y = module(x)
    return y


def fast_features(
    backbone: Any,
    image: Tensor,
    layers: Iterable[str],
    cache: WeightCache,
    *,
    winograd: bool = False,
    bfloat16: bool = False,
) -> dict[str, Tensor]:
    """``backbone.features(image, layers)``, computed by the fast path (see the module docstring);
    with ``bfloat16``, the network runs in bfloat16 and the layers come back as float32."""
    wanted = backbone.check_layers(layers)
    if not wanted:
        return {}
    names: list[str] = backbone.layer_names
    last = max(names.index(n) for n in wanted)
    wanted_set = set(wanted)
    out: dict[str, Tensor] = {}
    x = backbone.preprocess(image).contiguous(memory_format=torch.channels_last)
    if bfloat16:
        x = x.to(torch.bfloat16)  # the weights follow x's dtype (_conv_params)
    keep = True  # whether x (the previous layer's output) must stay intact
    for name in names[: last + 1]:
        module = backbone.layers[name]
        if type(module) is nn.ReLU and not keep:
            x = torch.relu_(x)  # nobody asked for the conv output it overwrites
        else:
            x = fast_apply(module, x, cache, winograd)
        keep = name in wanted_set
        if keep:
            out[name] = x.float() if bfloat16 else x
    return out
