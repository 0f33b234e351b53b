"""The figure helpers of notebooks 02-04 and the style-transfer widget build without error."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest
import torch
from PIL import Image

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
    from course_nst.widgets import png_bytes

    data = png_bytes(_image(8, 16), display_size=64)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert Image.open(io.BytesIO(data)).size == (64, 32)


def test_explorer_builds_and_runs(random_backbone):
    pytest.importorskip("ipywidgets")
    from course_nst.widgets import StyleTransferExplorer, style_transfer_explorer

    explorer = style_transfer_explorer(
        _image(32, 32, seed=2), _image(32, 32, seed=1), backbone=random_backbone, size=32, steps=10, update_every=2
    )
    assert isinstance(explorer, StyleTransferExplorer)
    placeholder_bytes = explorer.image.value
    default = random_backbone.alpha / random_backbone.beta_for((32, 32))  # the default balance at its size
    assert explorer.ratio.value == pytest.approx(default)
    assert explorer.steps.value == 10
    # before the first run: the start image (the content), drawn at display_size, not stretched
    placeholder = Image.open(io.BytesIO(explorer.image.value))
    assert placeholder.size == (320, 320)
    assert (explorer.image.layout.width, explorer.image.layout.height) == ("320px", "320px")
    assert explorer.image.layout.align_self == "flex-start"
    bundle = explorer._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert "trust the notebook" in bundle["text/plain"]
    assert "Try" in explorer.hint.value
    explorer.start.value = "noise"
    assert bytes(explorer.image.value) != bytes(placeholder_bytes)
    explorer.start.value = "content"

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
    assert Image.open(io.BytesIO(explorer.image.value)).size == (320, 320)
    assert result.settings["init"] == "content"
    assert f"J = {result.final['J']:.3g}," in explorer.summary()


def test_explorer_show_displays_a_static_png_and_the_summary(random_backbone, capsys):
    pytest.importorskip("ipywidgets")
    from unittest import mock

    from course_nst.widgets import style_transfer_explorer

    explorer = style_transfer_explorer(
        _image(16, 32),
        _image(32, 32, seed=1),
        backbone=random_backbone,
        size=32,
        steps=10,
        display_size=96,
        init="noise",
    )
    explorer.show()
    assert "no run yet" in capsys.readouterr().out
    explorer.run()
    with mock.patch("IPython.display.display") as display:
        explorer.show()
    (shown,), _ = display.call_args
    assert shown.format == "png" and shown.width == 96
    assert Image.open(io.BytesIO(shown.data)).size == (96, 48)
    assert capsys.readouterr().out.strip() == explorer.summary()
    assert "10 steps from noise" in explorer.summary()


def test_explorer_rejects_bad_arguments(random_backbone):
    pytest.importorskip("ipywidgets")
    from course_nst.widgets import style_transfer_explorer

    with pytest.raises(InputError):
        style_transfer_explorer(_image(), _image(), backbone="vgg19")
    with pytest.raises(InputError):
        style_transfer_explorer(_image(), _image(), backbone=random_backbone, update_every=0)
    with pytest.raises(InputError, match="init"):
        style_transfer_explorer(_image(), _image(), backbone=random_backbone, init="zeros")
    with pytest.raises(InputError, match="display_size"):
        style_transfer_explorer(_image(), _image(), backbone=random_backbone, size=128, display_size=64)
    with pytest.raises(InputError, match="ratio"):
        style_transfer_explorer(_image(), _image(), backbone=random_backbone, ratio=0)


def test_progress_bar_is_text_and_stays_when_done(capsys):
    from course_nst.progress import in_jupyter_kernel, progress_bar

    assert not in_jupyter_kernel()
    for _ in progress_bar(range(3), desc="work"):
        pass
    err = capsys.readouterr().err
    assert "work: 100%" in err and "3/3" in err
    assert err.rstrip("\n").split("\r")[-1].startswith("work: 100%")  # the last state is kept


def test_progress_bar_in_a_notebook_keeps_one_output_with_its_last_state():
    from unittest import mock

    from course_nst.progress import DisplayLine

    line = DisplayLine()
    with mock.patch("IPython.display.display") as display:
        line.write("\rwork:   0%|          | 0/3")
        line.write("\rwork:  33%|###       | 1/3")
        line.write("\rwork: 100%|##########| 3/3")
        line.write("\n")
    assert display.call_count == 1  # one output, then updates of it
    assert display.call_args.args[0] == {"text/plain": "work:   0%|          | 0/3"}
    updates = [c.args[0]["text/plain"] for c in display.return_value.update.call_args_list]
    assert updates == ["work:  33%|###       | 1/3", "work: 100%|##########| 3/3"]


def test_all_lists_what_the_notebooks_import():
    import ast
    import json
    from pathlib import Path

    from course_nst import plotting

    imported: set[str] = set()
    for nb in sorted((Path(__file__).parent.parent / "notebooks").glob("[0-9]*.ipynb")):
        for cell in json.loads(nb.read_text(encoding="utf-8"))["cells"]:
            if cell["cell_type"] != "code":
                continue
            source = "".join(cell["source"])
            if "course_nst.plotting" not in source:
                continue
            lines = [ln for ln in source.splitlines() if not ln.lstrip().startswith(("%", "!"))]
            for node in ast.walk(ast.parse("\n".join(lines))):
                if isinstance(node, ast.ImportFrom) and node.module == "course_nst.plotting":
                    imported.update(alias.name for alias in node.names)
    assert imported, "no notebook imports from course_nst.plotting"
    assert imported <= set(plotting.__all__), sorted(imported - set(plotting.__all__))
    assert all(hasattr(plotting, name) for name in plotting.__all__)


def test_plot_grams_puts_every_matrix_on_one_colour_scale():
    from course_nst.plotting import plot_grams

    small = torch.rand(6, 6, generator=torch.Generator().manual_seed(1))
    big = 10 * small + 5
    fig = plot_grams([small, big], ["small", "big"], gamma=0.5)
    images = [ax.images[0] for ax in fig.axes if ax.images]
    assert len(images) == 2
    for im in images:  # the smallest entry of all, the largest of all
        assert (im.norm.vmin, im.norm.vmax) == (pytest.approx(float(small.min())), pytest.approx(float(big.max())))
    assert len(fig.axes) == 3  # two heatmaps, one colour bar
    fig = plot_grams([torch.rand(70, 70)], max_channels=64)
    assert fig.axes[0].images[0].get_array().shape == (64, 64)
    assert "first 64 of 70" in fig.axes[0].get_title()


@pytest.mark.parametrize("plot", ["plot_gram", "plot_grams"])
def test_colour_bar_ticks_carry_their_whole_value(plot):
    """Large Gram entries are labelled 4e+09, not 4 under an offset "1e9" that collides with the panel's title."""
    import course_nst.plotting as plotting

    g = 7e9 * torch.rand(8, 8, generator=torch.Generator().manual_seed(2))
    fig = plotting.plot_gram(g) if plot == "plot_gram" else plotting.plot_grams([g, g])
    fig.canvas.draw()
    bar = fig.axes[-1]
    labels = [t.get_text() for t in bar.get_yticklabels() if t.get_text()]
    assert bar.yaxis.get_offset_text().get_text() == ""
    assert max(float(t.replace("\u2212", "-")) for t in labels) >= 1e9, labels


@pytest.mark.parametrize(
    ("grams", "kwargs", "words"),
    [
        ([], {}, "at least one"),
        ([torch.rand(3, 4)], {}, "square"),
        ([torch.rand(3, 3)], {"titles": ["a", "b"]}, "titles"),
        ([torch.rand(3, 3) - 1], {"gamma": 0.5}, ">= 0"),
        ([torch.rand(3, 3)], {"gamma": 0}, "gamma"),
    ],
)
def test_plot_grams_refuses_bad_input_in_one_line(grams, kwargs, words):
    from course_nst.plotting import plot_grams

    with pytest.raises(InputError, match=words):
        plot_grams(grams, **kwargs)
