"""Tests of the notebook-04 total-variation checker: it passes correct answers and names each usual slip."""

from __future__ import annotations

import pytest
import torch

from course_nst import costs as ref
from course_nst.checks import EXERCISES
from course_nst.checks.transfer import check_total_variation

EXERCISE = EXERCISES["total_variation"]


def _diffs(image):
    return image[:, :, 1:, :] - image[:, :, :-1, :], image[:, :, :, 1:] - image[:, :, :, :-1]


def tv_with_diff(image):
    """Also correct: torch.diff along the rows and the columns."""
    return (torch.diff(image, dim=2) ** 2).sum() + (torch.diff(image, dim=3) ** 2).sum()


def tv_float64(image):
    """Also correct: computed in float64."""
    dh, dw = _diffs(image.double())
    return dh.pow(2).sum() + dw.pow(2).sum()


def tv_absolute(image):
    dh, dw = _diffs(image)
    return dh.abs().sum() + dw.abs().sum()


def tv_only_vertical(image):
    dh, _ = _diffs(image)
    return (dh**2).sum()


def tv_only_horizontal(image):
    _, dw = _diffs(image)
    return (dw**2).sum()


def tv_mean(image):
    dh, dw = _diffs(image)
    return (dh**2).mean() + (dw**2).mean()


def tv_mean_pixels(image):
    dh, dw = _diffs(image)
    return ((dh**2).sum() + (dw**2).sum()) / image.numel()


def tv_norm(image):
    dh, dw = _diffs(image)
    return ((dh**2).sum() + (dw**2).sum()).sqrt()


def tv_roll(image):
    return ((torch.roll(image, -1, 2) - image) ** 2).sum() + ((torch.roll(image, -1, 3) - image) ** 2).sum()


def tv_channels_summed(image):
    dh, dw = _diffs(image)
    return (dh.sum(1) ** 2).sum() + (dw.sum(1) ** 2).sum()


def tv_half(image):
    return 0.5 * ref.total_variation(image)


def tv_detached(image):
    return torch.tensor(float(ref.total_variation(image.detach())))


def tv_item(image):
    return ref.total_variation(image).item()


def tv_keepdim(image):
    return ref.total_variation(image).reshape(1)


def tv_in_place(image):
    with torch.no_grad():
        image.clamp_(0.2, 0.8)  # changes the student's input
    return ref.total_variation(image)


def tv_per_channel(image):
    dh, dw = _diffs(image)
    return (dh**2).sum(dim=(0, 2, 3)) + (dw**2).sum(dim=(0, 2, 3))


WRONG = {
    "absolute": (tv_absolute, ["absolute differences", "squares each difference"]),
    "only_vertical": (tv_only_vertical, ["only compared vertical", "horizontal"]),
    "only_horizontal": (tv_only_horizontal, ["only compared horizontal", "vertical"]),
    "mean": (tv_mean, ["mean", "sum"]),
    "mean_pixels": (tv_mean_pixels, ["divided the sum by the number of values"]),
    "norm": (tv_norm, ["square root"]),
    "roll": (tv_roll, ["last row with the first", "torch.roll"]),
    "channels_summed": (tv_channels_summed, ["summed over the colour channels before squaring"]),
    "half": (tv_half, ["2 times too small", "no 1/2"]),
    "detached": (tv_detached, ["does not require grad"]),
    "item": (tv_item, ["Python float", "not a torch tensor"]),
    "keepdim": (tv_keepdim, ["0-dimensional"]),
    "per_channel": (tv_per_channel, ["shape [3]", "sum over every element"]),
}


@pytest.mark.parametrize("fn", [ref.total_variation, tv_with_diff, tv_float64])
def test_correct_total_variations_pass_with_one_line(fn, capsys):
    result = EXERCISE.evaluate(fn)
    assert result.passed, result.report()
    check_total_variation(fn)
    assert capsys.readouterr().out == "total_variation: all checks passed\n"


@pytest.mark.parametrize("case", list(WRONG))
def test_each_usual_slip_is_named(case):
    wrong, words = WRONG[case]
    result = EXERCISE.evaluate(wrong)
    assert not result.passed
    text = " ".join(result.problems)
    for word in words:
        assert word in text, f"{case}: {word!r} not in {text!r}"


def test_changing_the_input_in_place_is_named():
    result = EXERCISE.evaluate(tv_in_place)
    assert not result.passed
    assert "in place" in " ".join(result.problems)


def test_not_implemented_and_crashes_never_raise(capsys):
    def not_implemented(image):
        raise NotImplementedError

    def crashes(image):
        return image[:, :, 1:] - image[:, :, :, 1:]  # shapes do not broadcast

    assert EXERCISE.evaluate(not_implemented).not_implemented
    result = EXERCISE.evaluate(crashes)
    assert not result.passed and "raised RuntimeError" in result.problems[0]
    check_total_variation(crashes)
    assert "problem(s) found" in capsys.readouterr().out


def test_the_checker_belongs_to_notebook_04():
    assert EXERCISE.notebook == "04_neural_style_transfer"
    assert EXERCISE.function == "total_variation"


# --------------------------------------------------------------------------- notebook 04's race figure


def test_optimiser_race_draws_one_line_per_run_in_both_panels():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from course_nst.plotting import plot_optimiser_race

    runs = {"Adam": ([5.0, 4.0, 3.0], [0.1, 0.2, 0.3]), "L-BFGS": ([5.0, 1.0], [0.2, 0.5])}
    fig = plot_optimiser_race(runs, title="race")
    try:
        evals, secs = fig.axes[:2]
        assert [list(line.get_xdata()) for line in evals.lines] == [[1, 2, 3], [1, 2]]
        assert [list(line.get_xdata()) for line in secs.lines] == [[0.1, 0.2, 0.3], [0.2, 0.5]]
        assert evals.get_yscale() == "log" and [t.get_text() for t in evals.get_legend().get_texts()] == list(runs)
    finally:
        plt.close(fig)


def test_optimiser_race_refuses_times_that_do_not_match_the_costs():
    from course_nst.errors import InputError
    from course_nst.plotting import plot_optimiser_race

    with pytest.raises(InputError, match="3 costs and 2 times"):
        plot_optimiser_race({"Adam": ([3.0, 2.0, 1.0], [0.1, 0.2])})
    with pytest.raises(InputError, match="runs is empty"):
        plot_optimiser_race({})
