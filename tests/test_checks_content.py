"""Notebook 02's prediction question and its cells: the answer holds, and the notebook asks it in the agreed form."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
import torch

from course_nst.checks import PREDICTIONS, check_prediction
from course_nst.checks.content import PREDICTIONS as CONTENT_PREDICTIONS
from course_nst.costs import content_cost

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "02_content_cost.ipynb"
GROWTH = "predict_content_growth"


def test_the_question_is_registered_for_notebook_02():
    assert [p.grade_id for p in CONTENT_PREDICTIONS] == [GROWTH]
    assert PREDICTIONS[GROWTH].notebook == NOTEBOOK.stem


def test_doubling_both_sides_makes_four_times_as_many_terms_of_the_same_size():
    """The premise of the answer: J_content is a sum; the same activations at twice n_H and n_W cost 4 times as much."""
    g = torch.Generator().manual_seed(0)
    a_C, a_G = torch.randn(1, 5, 3, 4, generator=g), torch.randn(1, 5, 3, 4, generator=g)
    twice = [a.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3) for a in (a_C, a_G)]
    ratio = (content_cost(*twice) / content_cost(a_C, a_G)).item()
    assert ratio == pytest.approx(PREDICTIONS[GROWTH].answer, rel=1e-6)


@pytest.mark.parametrize("value", [4, 4.0, 3.5, 3])
def test_about_four_is_right_and_says_why(value, capsys):
    check_prediction(GROWTH, value)
    out = capsys.readouterr().out
    assert out.startswith(f"{GROWTH}: right."), out
    assert "sum" in out


@pytest.mark.parametrize("value", [1, 2, 8, 16, 0.25])
def test_a_wrong_prediction_gets_the_hint_not_the_answer(value, capsys):
    check_prediction(GROWTH, value)
    out = capsys.readouterr().out
    assert "right" not in out
    assert PREDICTIONS[GROWTH].hint in out
    assert not re.search(r"\b4\b|four", PREDICTIONS[GROWTH].hint + PREDICTIONS[GROWTH].question, re.I)


def _cells():
    return nbformat.read(NOTEBOOK, as_version=4).cells


def _index(cells, grade_id):
    found = [i for i, c in enumerate(cells) if (c.metadata.get("nbgrader") or {}).get("grade_id") == grade_id]
    assert len(found) == 1, f"{NOTEBOOK.name}: {len(found)} cells with grade_id {grade_id!r}"
    return found[0]


def test_the_notebook_asks_the_question_in_the_agreed_form():
    cells = _cells()
    i = _index(cells, GROWTH)
    answer, check = cells[i], cells[i + 1]
    assert cells[i - 1].cell_type == "markdown" and "twice" in cells[i - 1].source
    assert answer.metadata["nbgrader"] == {
        "grade": False,
        "grade_id": GROWTH,
        "locked": False,
        "schema_version": 3,
        "solution": True,
        "task": False,
    }
    assert answer.source.splitlines() == [
        "# Your prediction (a number), before you run the next cell:",
        "### BEGIN SOLUTION",
        f"{GROWTH} = {PREDICTIONS[GROWTH].answer:g}",
        "### END SOLUTION",
    ]
    assert check.metadata["nbgrader"]["grade_id"] == f"{GROWTH}_check"
    assert check.metadata["nbgrader"]["locked"] is True
    assert check.metadata["nbgrader"]["solution"] is False
    assert check.metadata["nbgrader"]["grade"] is False
    assert check.source.strip() == f'check_prediction("{GROWTH}", {GROWTH})'
    said = "".join(o.get("text", "") for o in check.outputs)
    assert said.startswith(f"{GROWTH}: right."), said


def test_the_notebook_measures_what_was_predicted_and_it_comes_about_true():
    """A later cell prints the measured ratios of J_content at 128 px to 64 px; each is roughly the prediction."""
    cells = _cells()
    later = cells[_index(cells, GROWTH) + 2 :]
    text = "".join(o.get("text", "") for c in later if c.cell_type == "code" for o in c.outputs)
    ratios = [float(r) for r in re.findall(r"J_content ratio (\d+\.\d+)", text)]
    assert len(ratios) >= 3, text[:2000]
    for r in ratios:
        assert r == pytest.approx(PREDICTIONS[GROWTH].answer, rel=0.5)
    terms = [float(r) for r in re.findall(r"terms ratio (\d+\.\d+)", text)]
    assert terms and all(t == pytest.approx(4.0) for t in terms)
