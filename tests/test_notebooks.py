"""The committed notebooks: executed in order, no errors, valid nbgrader exercises.

nbval (``make test``) re-runs the notebooks and compares their outputs; these tests
check what nbval does not: that the stored outputs come from one run from top to
bottom, and that every exercise cell is one a student release and a grader can use.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from course_nst.checks import EXERCISES, PREDICTIONS
from course_nst.instructor.grading import STANDARD_IMPORTS, notebook_imports  # what a grader runs first

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
NBGRADER_KEYS = {"grade", "grade_id", "locked", "schema_version", "solution", "task"}


def _read(path: Path):
    return nbformat.read(path, as_version=4)


def _code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def _nbgrader(cell) -> dict | None:
    return cell.metadata.get("nbgrader")


def _exercises(nb):
    """(index in nb.cells, cell) of every exercise (solution) cell; a prediction question's answer cell is not one."""
    return [
        (i, c)
        for i, c in enumerate(nb.cells)
        if c.cell_type == "code"
        and (_nbgrader(c) or {}).get("solution")
        and (_nbgrader(c) or {}).get("grade_id") not in PREDICTIONS
    ]


def _ids(paths):
    return [p.name for p in paths]


def test_there_are_notebooks():
    assert NOTEBOOKS, f"no notebooks found in {NOTEBOOK_DIR}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_valid_nbformat_v4(path):
    nb = _read(path)
    nbformat.validate(nb)
    assert nb.nbformat == 4
    assert nb.metadata.get("kernelspec", {}).get("language") == "python"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_executed_in_order_from_the_top(path):
    counts = [c.get("execution_count") for c in _code_cells(_read(path))]
    assert counts == list(range(1, len(counts) + 1)), (
        f"{path.name} was not executed top to bottom in one run (execution counts {counts}); run `make notebooks`"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_no_error_outputs(path):
    for i, cell in enumerate(_code_cells(_read(path)), start=1):
        for out in cell.get("outputs", []):
            assert out.output_type != "error", f"{path.name}, code cell {i}: {out.get('ename')}: {out.get('evalue')}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_nbgrader_metadata_is_valid(path):
    nb = _read(path)
    for i, cell in enumerate(nb.cells):
        meta = _nbgrader(cell)
        if meta is None:
            assert BEGIN not in cell.source and END not in cell.source, (
                f"{path.name}, cell {i}: solution markers in a cell without nbgrader metadata"
            )
            continue
        where = f"{path.name}, cell {i} ({meta.get('grade_id')!r})"
        assert cell.cell_type == "code", where
        assert set(meta) >= NBGRADER_KEYS, f"{where}: missing {sorted(NBGRADER_KEYS - set(meta))}"
        assert meta["schema_version"] == 3, where
        assert isinstance(meta["grade_id"], str) and re.fullmatch(r"[A-Za-z0-9_-]+", meta["grade_id"]), where
        for key in ("grade", "locked", "solution", "task"):
            assert isinstance(meta[key], bool), f"{where}: {key} must be true or false"
        if meta["grade"]:
            assert isinstance(meta.get("points"), (int, float)), f"{where}: a graded cell needs points"
        if meta["solution"]:
            assert not meta["locked"], f"{where}: a solution cell must not be locked"
        else:
            assert BEGIN not in cell.source, f"{where}: solution markers in a cell that is not a solution cell"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_exercises_have_balanced_markers_and_define_their_function(path):
    nb = _read(path)
    for i, cell in _exercises(nb):
        grade_id = _nbgrader(cell)["grade_id"]
        where = f"{path.name}, cell {i} ({grade_id!r})"
        assert grade_id in EXERCISES, f"{where}: not an exercise of course_nst.checks.EXERCISES"
        markers = [line.strip() for line in cell.source.splitlines() if line.strip() in (BEGIN, END)]
        assert markers and len(markers) % 2 == 0, f"{where}: unbalanced solution markers {markers}"
        assert markers == [BEGIN, END] * (len(markers) // 2), f"{where}: markers out of order or nested"
        function = EXERCISES[grade_id].function
        assert re.search(rf"^def {function}\(", cell.source, re.M), f"{where}: must define `def {function}(...)`"
        head = cell.source.split(BEGIN)[0]
        assert '"""' in head or "'''" in head, f"{where}: the docstring must stay outside the solution"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_every_exercise_is_followed_by_its_check(path):
    nb = _read(path)
    code = [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    for i, cell in _exercises(nb):
        grade_id = _nbgrader(cell)["grade_id"]
        following = [c for j, c in code if j > i]
        assert following, f"{path.name}: exercise {grade_id!r} is the last code cell"
        check = following[0]
        meta = _nbgrader(check) or {}
        assert meta.get("grade_id") == f"{grade_id}_check", (
            f"{path.name}: the code cell after exercise {grade_id!r} must be its check "
            f"(grade_id {grade_id}_check), found {meta.get('grade_id')!r}"
        )
        assert meta.get("locked") is True and meta.get("solution") is False
        function = EXERCISES[grade_id].function
        assert re.search(rf"check_{function}\(\s*{function}\s*\)", check.source), (
            f"{path.name}: the check cell of {grade_id!r} must call check_{function}({function})"
        )
        # the check passed on the stored solution
        text = "".join(o.get("text", "") for o in check.get("outputs", []) if o.output_type == "stream")
        assert f"{function}: all checks passed" in text, f"{path.name}: {grade_id} check output: {text!r}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_nothing_after_the_check_uses_the_students_function(path):
    """The first later cell that names the function re-imports the tested version (or none names it).

    So a student's unfinished function (``raise NotImplementedError()``) cannot break later cells.
    """
    nb = _read(path)
    for i, cell in _exercises(nb):
        function = EXERCISES[_nbgrader(cell)["grade_id"]].function
        later = [c for c in nb.cells[i + 1 :] if c.cell_type == "code" and not (_nbgrader(c) or {}).get("locked")]
        users = [c for c in later if re.search(rf"\b{function}\b", c.source)]
        if not users:
            continue
        assert re.search(rf"^from course_nst[\w.]* import .*\b{function}\b", users[0].source, re.M), (
            f"{path.name}: the first cell after the exercise that uses {function} must import the tested "
            f"version (from course_nst... import {function}); it is:\n{users[0].source}"
        )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_exercise_cells_run_alone_with_the_standard_imports(path):
    """As a grader runs them: a fresh namespace, the standard imports, the other exercises' tested versions."""
    import course_nst
    import course_nst.costs

    nb = _read(path)
    for i, cell in _exercises(nb):
        exercise = EXERCISES[_nbgrader(cell)["grade_id"]]
        namespace: dict = {}
        exec(STANDARD_IMPORTS, namespace)
        for statement in notebook_imports(nb, cell):  # the grader's own list of allowed imports
            exec(statement, namespace)
        for other in EXERCISES.values():
            for home in (course_nst.costs, course_nst):
                if other.function != exercise.function and callable(getattr(home, other.function, None)):
                    namespace[other.function] = getattr(home, other.function)
                    break
        exec(compile(cell.source, f"{path.name}[{i}]", "exec"), namespace)
        result = exercise.evaluate(namespace[exercise.function])
        assert result.passed, f"{path.name}: {result.report()}"


_PLOT_CALL = re.compile(r"^(?:\w+\s*=\s*)?(?:plt\.|plot_\w+\()", re.M)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_plot_cells_end_with_plt_show(path):
    """A cell that draws a figure at its top level ends with plt.show() (no stray '<Figure ...>' reprs)."""
    for i, cell in enumerate(_code_cells(_read(path)), start=1):
        if "nbval-ignore-output" in cell.metadata.get("tags", []):
            continue
        if not _PLOT_CALL.search(cell.source):
            continue
        lines = [line for line in cell.source.splitlines() if line.strip() and not line.lstrip().startswith("#")]
        assert lines[-1].strip() == "plt.show()", (
            f"{path.name}, code cell {i} draws a figure but does not end with plt.show()"
        )


def test_grade_ids_are_unique_across_notebooks():
    seen: dict[str, str] = {}
    for path in NOTEBOOKS:
        for _, cell in _exercises(_read(path)):
            grade_id = _nbgrader(cell)["grade_id"]
            assert grade_id not in seen, f"grade_id {grade_id!r} in {path.name} and in {seen[grade_id]}"
            seen[grade_id] = path.name
