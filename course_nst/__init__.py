"""course_nst: the companion package of the course-nst Neural Style Transfer series.

The notebooks in ``notebooks/`` import their tested building blocks from here::

    from course_nst import load_image, load_backbone, style_transfer
    from course_nst.costs import content_cost, gram_matrix, layer_style_cost, style_cost

The names below are loaded on first use, so that ``import course_nst`` (and the
``course-nst`` command's start) does not import PyTorch before it is needed: a Ctrl-C
while the command starts is then handled like any other.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import InputError

__version__ = "0.1.0"

#: public name -> the module that defines it (a module name maps to itself)
_HOMES = {
    "Backbone": "backbones",
    "load_backbone": "backbones",
    "content_cost": "costs",
    "gram_matrix": "costs",
    "layer_style_cost": "costs",
    "style_cost": "costs",
    "total_cost": "costs",
    "total_variation": "costs",
    "load_image": "images",
    "save_image": "images",
    "top_patches": "patches",
    "receptive_field": "receptive_field",
    "receptive_fields": "receptive_field",
    "NonFiniteCostError": "transfer",
    "Result": "transfer",
    "style_transfer": "transfer",
    "costs": "costs",
    "samples": "samples",
}

__all__ = [
    "InputError",
    "Backbone",
    "NonFiniteCostError",
    "Result",
    "content_cost",
    "costs",
    "gram_matrix",
    "layer_style_cost",
    "load_backbone",
    "load_image",
    "receptive_field",
    "receptive_fields",
    "samples",
    "save_image",
    "style_cost",
    "style_transfer",
    "top_patches",
    "total_cost",
    "total_variation",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'course_nst' has no attribute {name!r}")
    module = importlib.import_module(f".{home}", __name__)
    value = module if name == home else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:
    from . import costs, samples
    from .backbones import Backbone, load_backbone
    from .costs import content_cost, gram_matrix, layer_style_cost, style_cost, total_cost, total_variation
    from .images import load_image, save_image
    from .patches import top_patches
    from .receptive_field import receptive_field, receptive_fields
    from .transfer import NonFiniteCostError, Result, style_transfer
