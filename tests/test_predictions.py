"""Prediction questions: the Prediction's verdicts, their release (``<variable> = None``) and their grading.

The notebook form: a markdown question, an answer cell (nbgrader solution cell, grade_id in
PREDICTIONS) that assigns the variable between the solution markers, a locked cell calling
``check_prediction``. The small notebook and the fake registry's ``predict_sum`` (answer 5,
2 points) are built here and in test_release.py; the grading tests start one kernel each.
"""

from __future__ import annotations

import argparse
from glob import glob
from pathlib import Path

import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient
from test_release import REPO, assert_released_properly, exercise_cell, nbgrader_meta, registry_dir  # noqa: F401

from course_nst.checks import PREDICTIONS, Prediction, check_prediction
from course_nst.errors import InputError
from course_nst.instructor.grading import (
    GradeConfig,
    expected_exercises,
    format_report,
    grade_exercise,
    grade_notebook,
    load_registry,
)
from course_nst.instructor.release import release_notebook, release_notebooks

ANSWER = (
    "# Your prediction (a number), before you run the next cell:\n### BEGIN SOLUTION\npredict_sum = 5\n### END SOLUTION"
)
CHECK = 'check_prediction("predict_sum", predict_sum)'
HIDDEN = "\n### BEGIN HIDDEN TESTS\nassert predict_sum == 5\n### END HIDDEN TESTS"

SUM = Prediction(
    grade_id="predict_sum",
    variable="predict_sum",
    notebook="03_fake_predict",
    question="How much is 2 + 3?",
    answer=5,
    why="two and three make five.",
    hint="count on your fingers.",
    rel_tol=0.01,
)


def check_cell(source: str = CHECK) -> nbformat.NotebookNode:
    return nbformat.v4.new_code_cell(source, metadata=nbgrader_meta("predict_sum_check", False))


def prediction_notebook(registry_dir: Path, answer: str = ANSWER, check: str = CHECK + HIDDEN) -> nbformat.NotebookNode:  # noqa: F811
    """A solution notebook with one prediction question, as if executed (every code cell has an output)."""
    setup = f"import sys; sys.path.insert(0, {str(registry_dir)!r})\nfrom fake_nst_checks import check_prediction"
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(setup),
            nbformat.v4.new_markdown_cell("**Predict.** How much is 2 + 3?"),
            exercise_cell("predict_sum", answer),
            check_cell(check),
            nbformat.v4.new_code_cell("print(2 + 3)  # the experiment"),
        ]
    )
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            cell.execution_count = i
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"output {i}\n")]
    return nb


@pytest.fixture(scope="module")
def fake(registry_dir):  # noqa: F811
    return load_registry(GradeConfig(registry="fake_nst_checks", sys_path=(str(registry_dir),)))


def cfg(registry_dir: Path) -> GradeConfig:  # noqa: F811
    return GradeConfig(registry="fake_nst_checks", sys_path=(str(registry_dir),), timeout=30)


# ---------------------------------------------------------------- the Prediction's verdicts (no kernel)


class Liar(float):
    """Says it equals everything and converts to the answer."""

    def __eq__(self, other):
        return True

    __hash__ = float.__hash__

    def __float__(self):
        return 5.0


@pytest.mark.parametrize(
    "value, passed, words",
    [
        (5, True, ""),
        (5.04, True, ""),  # within rel_tol 0.01
        (4, False, "4 is not it. Hint: count on your fingers."),
        (5.1, False, "5.1 is not it"),
        (float("nan"), False, "nan is not it"),
        (None, False, "not answered yet: replace None with your prediction (a number) in predict_sum = ..."),
        ("5", False, "should be a plain number such as 4 or 0.5, got str"),
        (True, False, "got bool"),
        (np.float64(5), False, "got float64"),
        (Liar(5), False, "got Liar"),
        ([5], False, "got list"),
        (10**400, False, "a number too large for a float is not it"),
    ],
)
def test_a_prediction_is_right_only_for_a_plain_number_close_to_the_answer(value, passed, words):
    result = SUM.evaluate(value)
    assert result.passed == passed and result.name == "predict_sum"
    assert (result.problems == []) if passed else (len(result.problems) == 1 and words in result.problems[0])


def test_check_prints_why_when_right_and_the_hint_without_the_answer_when_wrong(capsys):
    SUM.check(5)
    assert capsys.readouterr().out == "predict_sum: right. two and three make five.\n"
    SUM.check(7)
    assert capsys.readouterr().out == "predict_sum: 7 is not it. Hint: count on your fingers.\n"
    check_prediction("no_such_question", 1)
    assert "no prediction question is called 'no_such_question'" in capsys.readouterr().out
    with pytest.raises(ValueError, match="is not a Python name"):
        Prediction("x", "not a name", "nb", "q", 1, "why", "hint")


def test_every_course_prediction_names_a_course_notebook_and_accepts_its_answer():
    stems = {Path(p).stem for p in glob(str(REPO / "notebooks" / "*.ipynb"))}
    assert PREDICTIONS
    for gid, p in PREDICTIONS.items():
        assert p.grade_id == gid and p.notebook in stems, (gid, p.notebook)
        assert p.evaluate(p.answer).passed and not p.evaluate(p.answer * 2 + 1).passed


# ---------------------------------------------------------------- release


def test_release_sets_the_variable_to_none_and_keeps_every_other_rule(registry_dir, fake, tmp_path):  # noqa: F811
    source = prediction_notebook(registry_dir)
    released = release_notebook(source, "03_fake_predict.ipynb", fake)
    assert_released_properly(source, released, fake)
    cells = released.cells
    assert cells[2].source == "# Your prediction (a number), before you run the next cell:\npredict_sum = None"
    assert cells[3].source == CHECK  # hidden tests removed
    assert cells[0].outputs  # before the first question: kept
    assert all(c.outputs == [] and c.execution_count is None for c in cells[2:] if c.cell_type == "code")
    assert "predict_sum = 5" in source.cells[2].source  # the input is not modified
    no_markers = prediction_notebook(registry_dir, answer="predict_sum = 5")
    assert release_notebook(no_markers, "x", fake).cells[2].source == "predict_sum = None"  # replaced whole

    path = tmp_path / "src" / "03_fake_predict.ipynb"
    path.parent.mkdir()
    nbformat.write(source, path)
    summary = release_notebooks([path], tmp_path / "out", solutions=True, predictions=fake)
    assert summary.predictions == {"03_fake_predict.ipynb": ["predict_sum"]}
    assert summary.exercises == {"03_fake_predict.ipynb": []}
    key = (tmp_path / "out" / "solutions" / "ANSWER_KEY.md").read_text()
    assert "### `predict_sum`" in key and "predict_sum = 5" in key and "Why: two and three make five." in key
    with pytest.raises(InputError, match="would overwrite the source notebook"):
        release_notebooks([path], path.parent, predictions=fake)


def test_the_released_notebook_runs_and_its_check_says_not_answered_yet(registry_dir, fake, tmp_path):  # noqa: F811
    path = tmp_path / "03_fake_predict.ipynb"
    nbformat.write(prediction_notebook(registry_dir), path)
    release_notebooks([path], tmp_path / "out", predictions=fake)
    nb = nbformat.read(tmp_path / "out" / path.name, as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    texts = ["".join(o.get("text", "") for o in c.outputs) for c in nb.cells if c.cell_type == "code"]
    assert (
        texts[2] == "predict_sum: not answered yet: replace None with your prediction (a number) in predict_sum = ...\n"
    )
    assert texts[3] == "5\n"


@pytest.mark.parametrize(
    "answer, check, words",
    [
        (ANSWER.replace("### END SOLUTION", "### END SOLUTIONS"), CHECK, "looks like a marker but is not one"),
        (ANSWER.replace("predict_sum = 5", "guess = 5"), CHECK, "does not assign predict_sum"),
        (ANSWER.replace("predict_sum = 5", "predict_sum = = 5"), CHECK, "is not valid Python"),
        (ANSWER, 'check_prediction("predict_sun", predict_sum)', "names no known prediction question"),
        (ANSWER, 'check_prediction("predict_sum", guess)', "should be given predict_sum"),
    ],
)
def test_prediction_cells_that_do_not_fit_together_are_refused(registry_dir, fake, answer, check, words):  # noqa: F811
    with pytest.raises(InputError, match=words) as info:
        release_notebook(prediction_notebook(registry_dir, answer, check), "03_fake_predict.ipynb", fake)
    assert "03_fake_predict.ipynb: " in str(info.value) and "\n" not in str(info.value)


def test_an_answer_outside_a_solution_cell_is_refused_not_handed_out(registry_dir, fake):  # noqa: F811
    nb = prediction_notebook(registry_dir)
    nb.cells[2] = nbformat.v4.new_code_cell("predict_sum = 5")  # no nbgrader metadata: would be released as is
    with pytest.raises(InputError, match="the answer would be handed out"):
        release_notebook(nb, "03_fake_predict.ipynb", fake)
    nb = prediction_notebook(registry_dir)
    nb.cells[2] = nbformat.v4.new_markdown_cell("predict_sum = 5", metadata=nbgrader_meta("predict_sum", True))
    nb.cells[2].metadata.nbgrader.update(grade=True, points=1)
    with pytest.raises(InputError, match="has to be a code cell"):
        release_notebook(nb, "03_fake_predict.ipynb", fake)


def test_command_line_release_counts_the_prediction_questions(registry_dir, tmp_path, capsys, monkeypatch):  # noqa: F811
    from course_nst.instructor import release

    path = tmp_path / "03_fake_predict.ipynb"
    nbformat.write(prediction_notebook(registry_dir), path)
    monkeypatch.setattr(release, "_known_predictions", lambda predictions: load_registry(cfg(registry_dir)))
    parser = argparse.ArgumentParser(prog="course-nst")
    release.add_release_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["release", str(path), "--out", str(tmp_path / "o")])
    assert args.func(args) == 0
    assert "(0 exercise(s): -; 1 prediction question(s): predict_sum)" in capsys.readouterr().out


# ---------------------------------------------------------------- grading


def student(registry_dir: Path, tmp_path: Path, name: str, answer: str | None) -> Path:  # noqa: F811
    """The released notebook with the answer cell's source replaced (``None``: the cell deleted)."""
    nb = release_notebook(prediction_notebook(registry_dir), name, load_registry(cfg(registry_dir)))
    if answer is None:
        del nb.cells[2]
    else:
        nb.cells[2].source = answer
    path = tmp_path / name
    nbformat.write(nb, path)
    return path


def test_the_right_number_gets_the_prediction_s_points_and_is_listed_with_the_exercises(
    registry_dir,  # noqa: F811
    fake,
    tmp_path,
):
    path = student(registry_dir, tmp_path, "03_fake_predict-alice.ipynb", "predict_sum = 2 + 3")
    [s] = grade_notebook(path, cfg(registry_dir), fake)
    assert (s.grade_id, s.function, s.score, s.max_score, s.status, s.reason) == (
        "predict_sum",
        "predict_sum",
        2,
        2,
        "passed",
        "",
    )
    # a notebook with an exercise and a prediction: one line each, one total
    nb = nbformat.read(path, as_version=4)
    nb.cells.insert(1, exercise_cell("add", "def add(a, b):\n    return a + b\n"))
    mixed = tmp_path / "mixed.ipynb"
    nbformat.write(nb, mixed)
    scores = grade_notebook(mixed, cfg(registry_dir), fake)
    assert [(s.grade_id, s.status, s.score) for s in scores] == [("add", "passed", 1), ("predict_sum", "passed", 2)]
    report = format_report(scores).splitlines()
    assert [line.split()[1:4] for line in report[2:4]] == [["add", "1/1", "passed"], ["predict_sum", "2/2", "passed"]]
    assert report[-1] == f"total {mixed}: 3/3"


@pytest.mark.parametrize(
    "answer, status, words",
    [
        (None, "not answered", "not answered yet: replace None with your prediction"),  # the released cell
        ("predict_sum = 4", "failed", "4 is not it. Hint: count on your fingers."),
        ("predict_sum = 'five'", "failed", "should be a plain number such as 4 or 0.5, got str"),
        ("predict_sum = 5 > 4", "failed", "got bool"),
        ("predict_sum = np.float64(5)", "failed", "got float64"),
        ("predict = 5", "missing", "the cell does not assign predict_sum (renamed or deleted?)"),
        ("predict_sum = 5 / 0", "missing", "running the cell raised ZeroDivisionError: division by zero"),
    ],
)
def test_a_wrong_missing_or_non_number_answer_gets_zero_with_the_reason(registry_dir, fake, answer, status, words):  # noqa: F811
    source = "predict_sum = None" if answer is None else answer
    got, reason = grade_exercise(source, fake["predict_sum"], fake, cfg(registry_dir))
    assert got == status and words in reason, (got, reason)
    assert "5" not in reason.replace("4 or 0.5", "")  # never the answer


def test_a_deleted_answer_cell_is_missing_and_expected_by_the_notebook_s_name(registry_dir, fake, tmp_path):  # noqa: F811
    assert [e.grade_id for e in expected_exercises("03_fake_predict-bob.ipynb", None, fake)] == ["predict_sum"]
    path = student(registry_dir, tmp_path, "03_fake_predict-bob.ipynb", None)
    [s] = grade_notebook(path, cfg(registry_dir), fake)
    assert (s.score, s.max_score, s.status, s.reason) == (
        0,
        2,
        "missing",
        "the cell with grade_id predict_sum was deleted",
    )
    # the course's registry has the course's questions, expected by their notebooks' names
    course = load_registry(GradeConfig())
    for gid, p in PREDICTIONS.items():
        assert course[gid] == p and p in expected_exercises(f"{p.notebook}-carol.ipynb", None, course)


def _doc_rows(grade_ids):
    """(notebook, grade_id, points) of each table row of docs/instructors.md naming one of ``grade_ids``."""
    rows = set()
    for line in (REPO / "docs" / "instructors.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) >= 4 and cells[1].strip("`") in grade_ids:
            rows.add((cells[0], cells[1].strip("`"), int(cells[-2] if cells[-1].endswith("min") else cells[-1])))
    return rows


def test_the_instructors_guide_lists_every_exercise_and_prediction_with_its_points():
    from course_nst.checks import EXERCISES

    for registry in (EXERCISES, PREDICTIONS):
        assert _doc_rows(set(registry)) == {(Path(q.notebook).stem, q.grade_id, q.points) for q in registry.values()}
