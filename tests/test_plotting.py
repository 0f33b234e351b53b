"""The figure helpers of notebooks 02-04 and the style-transfer widget build without error."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest
import torch

from course_nst.errors import InputError
from course_nst.plotting import plot_cost_curves, plot_gram, plot_images, plot_ratio_grid
from course_nst.transfer import Result


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _image(h=12, w=16, seed=0):
    return torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(seed))


def _result(n=5, alpha=2.0, beta=100.0, seed=0):
    history = [
        {"step": i + 1, "J": 100.0 / (i + 1), "J_content": 10.0 / (i + 1), "J_style": 1.0 / (i + 1), "J_tv": 0.0}
        for i in range(n)
    ]
    return Result(image=_image(seed=seed), history=history, settings={"alpha": alpha, "beta": beta})


def _titles(fig):
    return [ax.get_title() for ax in fig.axes if ax.get_title()]


# --------------------------------------------------------------------------- plot_images


def test_plot_images_one_row_with_titles():
    fig = plot_images([_image(), _image(seed=1), _image(20, 10)], ["a", "b", "c"], suptitle="row")
    assert len(fig.axes) == 3
    assert _titles(fig) == ["a", "b", "c"]
    assert fig._suptitle.get_text() == "row"


def test_plot_images_grid_hides_empty_slots():
    fig = plot_images([_image(seed=i) for i in range(5)], ncols=3)
    assert len(fig.axes) == 6
    assert sum(1 for ax in fig.axes if ax.images) == 5


def test_plot_images_rejects_bad_input():
    with pytest.raises(InputError):
        plot_images([])
    with pytest.raises(InputError):
        plot_images([_image()], ["a", "b"])
    with pytest.raises(InputError):
        plot_images([torch.rand(2, 3, 4, 4)])


# --------------------------------------------------------------------------- plot_cost_curves


def test_cost_curves_one_panel_per_cost_on_log_axes():
    fig = plot_cost_curves(_result(), keys=("J", "J_content", "J_style"), title="t")
    assert len(fig.axes) == 3
    assert all(ax.get_yscale() == "log" for ax in fig.axes)
    assert all(len(ax.lines) == 1 for ax in fig.axes)
    assert all(ax.get_legend() is None for ax in fig.axes)  # one run: no legend


def test_cost_curves_several_runs_get_a_legend():
    fig = plot_cost_curves({"noise": _result(), "content": _result(7)}, keys=("J", "J_style"), log=False)
    assert len(fig.axes) == 2
    assert all(len(ax.lines) == 2 for ax in fig.axes)
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["noise", "content"]
    assert fig.axes[0].get_yscale() == "linear"


def test_cost_curves_weighted_multiplies_by_alpha_and_beta():
    fig = plot_cost_curves(_result(alpha=2.0, beta=100.0), keys=("J_content", "J_style"), weighted=True)
    content_line, style_line = fig.axes[0].lines[0], fig.axes[1].lines[0]
    assert content_line.get_ydata()[0] == pytest.approx(20.0)
    assert style_line.get_ydata()[0] == pytest.approx(100.0)
    assert "alpha" in fig.axes[0].get_title()


def test_cost_curves_hide_zeros_on_log_axes():
    res = _result()
    res.history[0]["J_content"] = 0.0  # e.g. a run that starts from the content image
    fig = plot_cost_curves(res, keys=("J_content",))
    ydata = fig.axes[0].lines[0].get_ydata()
    assert ydata[0] != ydata[0]  # NaN: not drawn
    assert ydata[1] == pytest.approx(5.0)


def test_cost_curves_reject_bad_input():
    with pytest.raises(InputError):
        plot_cost_curves({"a": 1})
    with pytest.raises(InputError):
        plot_cost_curves(_result(), keys=())


# --------------------------------------------------------------------------- plot_gram, plot_ratio_grid


def test_plot_gram_heatmap_and_colorbar():
    a = torch.randn(1, 8, 5, 5)
    g = a.reshape(8, -1) @ a.reshape(8, -1).T
    fig = plot_gram(g, title="G")
    assert len(fig.axes) == 2  # the heatmap and its colour bar
    assert fig.axes[0].get_title() == "G"
    assert fig.axes[0].images[0].get_array().shape == (8, 8)


def test_plot_gram_limits_channels_and_draws_into_given_axes():
    fig, ax = plt.subplots()
    g = torch.eye(100)
    out = plot_gram(g, ax=ax, max_channels=10)
    assert out is fig
    assert ax.images[0].get_array().shape == (10, 10)
    assert "first 10 of 100" in ax.get_title()
    with pytest.raises(InputError):
        plot_gram(torch.zeros(3, 4))


def test_plot_ratio_grid_titles_with_costs():
    fig = plot_ratio_grid({"x1": _result(), "x10": _result(3)})
    titles = _titles(fig)
    assert len(fig.axes) == 2 and len(titles) == 2
    assert titles[0].startswith("x1\n") and "J_{content}" in titles[0]
    fig = plot_ratio_grid({"x1": _result()}, show_costs=False)
    assert _titles(fig) == ["x1"]


# --------------------------------------------------------------------------- the widget


@pytest.fixture(scope="module")
def random_backbone():
    from course_nst import load_backbone

    return load_backbone("efficientnet_lite0", weights="random", device="cpu")


def test_png_bytes_is_a_png_scaled_up():
    import io

    from PIL import Image

    from course_nst.widgets import png_bytes

    data = png_bytes(_image(8, 16), display_size=64)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert Image.open(io.BytesIO(data)).size == (64, 32)


def test_explorer_builds_and_runs(random_backbone):
    pytest.importorskip("ipywidgets")
    from course_nst.widgets import StyleTransferExplorer, style_transfer_explorer

    explorer = style_transfer_explorer(
        _image(32, 32), _image(32, 32, seed=1), backbone=random_backbone, size=32, steps=10, update_every=2
    )
    assert isinstance(explorer, StyleTransferExplorer)
    default = random_backbone.alpha / random_backbone.beta
    assert explorer.ratio.value == pytest.approx(default)
    assert explorer.steps.value == 10
    assert explorer.image.value == b""
    assert "application/vnd.jupyter.widget-view+json" in explorer._repr_mimebundle_()

    updates = []
    explorer.image.observe(lambda change: updates.append(len(change["new"])), names="value")
    explorer.ratio.value = default * 10
    result = explorer.run()
    assert result is explorer.result
    assert len(result.history) == 10
    assert result.settings["beta"] == pytest.approx(random_backbone.alpha / (default * 10), rel=1e-6)
    assert len(updates) >= 5  # redrawn every 2 steps while running, and at the end
    assert explorer.image.value[:8] == b"\x89PNG\r\n\x1a\n"
    assert explorer.status.value.startswith("done")
    assert not explorer.button.disabled


def test_explorer_rejects_bad_arguments(random_backbone):
    pytest.importorskip("ipywidgets")
    from course_nst.widgets import style_transfer_explorer

    with pytest.raises(InputError):
        style_transfer_explorer(_image(), _image(), backbone="vgg19")
    with pytest.raises(InputError):
        style_transfer_explorer(_image(), _image(), backbone=random_backbone, update_every=0)
