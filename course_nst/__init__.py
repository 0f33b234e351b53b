"""course_nst: the companion package of the course-nst Neural Style Transfer series.

The notebooks in ``notebooks/`` import their tested building blocks from here::

    from course_nst import load_image, load_backbone, style_transfer
    from course_nst.costs import content_cost, gram_matrix, layer_style_cost, style_cost
"""

from . import costs, samples
from .backbones import Backbone, load_backbone
from .costs import content_cost, gram_matrix, layer_style_cost, style_cost, total_cost, total_variation
from .errors import InputError
from .images import load_image, save_image
from .patches import top_patches
from .receptive_field import receptive_field, receptive_fields
from .transfer import NonFiniteCostError, Result, style_transfer

__version__ = "0.1.0"

__all__ = [
    "Backbone",
    "InputError",
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
    "total_cost",
    "top_patches",
    "total_variation",
]
