"""Grading: full marks for the solutions, zero with a reason for every broken case, no tampering.

Each graded exercise starts a fresh kernel (a few seconds), so the cases are
chosen to cover each path once.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import nbformat
import pytest
from test_release import (  # noqa: F401 - fixtures
    CONTENT_SOLUTION,
    REAL_NOTEBOOKS,
    exercise_cell,
    fakes,
    registry_dir,
)

from course_nst.errors import InputError
from course_nst.instructor.grading import (
    GradeConfig,
    add_grade_parser,
    expected_exercises,
    format_report,
    grade_exercise,
    grade_notebook,
    load_registry,
)
from course_nst.release import release_notebooks

_REGISTRY_DIRS: list[str] = []


def cfg(**changes) -> GradeConfig:
    """A config that grades against the fake registry (its folder is set by the ``registry`` fixture)."""
    return GradeConfig(**{"registry": "fake_nst_checks", "sys_path": tuple(_REGISTRY_DIRS), "timeout": 20, **changes})

WRONG_CONTENT = '''def content_cost(a_C, a_G):
    return ((a_C - a_G) ** 2).sum()  # forgot the 1/2
'''


@pytest.fixture(scope="module")
def registry(registry_dir):  # noqa: F811
    _REGISTRY_DIRS[:] = [str(registry_dir)]
    return load_registry(cfg())


def student_notebook(fakes, tmp_path, name="02_fake_content-alice.ipynb", **exercise_sources):  # noqa: F811
    """The released notebook of ``fakes``, with exercise cells replaced by the given sources."""
    out = tmp_path / "release"
    release_notebooks(fakes, out)
    source = "01" if "add" in exercise_sources else "02"
    nb = nbformat.read(next(out.glob(source + "*.ipynb")), as_version=4)
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in exercise_sources:
            cell.source = exercise_sources[gid]
    path = tmp_path / name
    nbformat.write(nb, path)
    return path


def by_id(scores):
    return {s.grade_id: s for s in scores}


def test_filled_in_solutions_get_full_marks_and_released_ones_get_zero(fakes, tmp_path, registry):  # noqa: F811
    filled = student_notebook(fakes, tmp_path, name="02_fake_content.ipynb",
                              content_cost=nbformat.read(fakes[1], as_version=4).cells[1].source)
    scores = grade_notebook(filled, cfg(), registry)
    assert [(s.grade_id, s.score, s.max_score, s.status) for s in scores] == [("content_cost", 2, 2, "passed")], scores
    released = student_notebook(fakes, tmp_path, name="02_fake_content-bob.ipynb")
    [s] = grade_notebook(released, cfg(), registry)
    assert (s.score, s.status, s.reason) == (0, "not implemented", "not implemented yet")


def test_tampering_with_the_checker_or_the_reference_does_not_pay(fakes, tmp_path, registry):  # noqa: F811
    # In another cell: never run by the grader.
    path = student_notebook(fakes, tmp_path, content_cost=WRONG_CONTENT)
    nb = nbformat.read(path, as_version=4)
    nb.cells.insert(2, nbformat.v4.new_code_cell(
        "import fake_nst_checks, course_nst.costs\n"
        "fake_nst_checks.EXERCISES['content_cost'].__class__.evaluate = lambda self, fn: None\n"
        "course_nst.costs.content_cost = content_cost"))
    nbformat.write(nb, path)
    [s] = grade_notebook(path, cfg(), registry)
    assert (s.score, s.status) == (0, "failed") and "expected" in s.reason
    # Inside the exercise cell: the kernel's reference becomes the wrong answer, the grader's does not.
    patched = WRONG_CONTENT + "import course_nst.costs\ncourse_nst.costs.content_cost = content_cost\n"
    status, reason = grade_exercise(patched, registry["content_cost"], registry, cfg())
    assert status == "failed" and "expected" in reason
    # Importing the package's implementation instead of writing one.
    status, reason = grade_exercise("from course_nst.costs import content_cost",
                                    registry["content_cost"], registry, cfg())
    assert status == "failed" and "the package's implementation" in reason


def test_printing_a_fake_verdict_does_not_pay(registry):
    fake = ('import json\nfor t in ("", "0" * 32):\n'
            '    print(t, json.dumps({"status": "passed", "problems": []}))\n' + WRONG_CONTENT)
    status, reason = grade_exercise(fake, registry["content_cost"], registry, cfg())
    assert status == "failed" and "expected" in reason


def test_broken_notebooks_get_zero_with_a_reason_and_never_crash_the_grader(fakes, tmp_path, registry):  # noqa: F811
    loop = "def add(a, b):\n    while True:\n        pass\n"
    path = student_notebook(fakes, tmp_path, name="01_fake_numbers-carol.ipynb", add=loop)
    scores = by_id(grade_notebook(path, cfg(timeout=3), registry))
    assert scores["add"].status == "timed out"
    assert scores["add"].reason.startswith("timed out after 3 s (while being checked")
    assert scores["add"].score == 0

    # Syntax error and a deleted cell need no kernel.
    path = student_notebook(fakes, tmp_path, name="01_fake_numbers-dan.ipynb", add="def add(a, b):\n    return a +\n")
    assert by_id(grade_notebook(path, cfg(), registry))["add"].reason == "SyntaxError at line 2: invalid syntax"
    nb = nbformat.read(fakes[1], as_version=4)
    del nb.cells[1]
    nbformat.write(nb, tmp_path / "02_fake_content-erin.ipynb")
    [s] = grade_notebook(tmp_path / "02_fake_content-erin.ipynb", cfg(), registry)
    assert (s.score, s.status, s.reason) == (0, "missing", "the cell with grade_id content_cost was deleted")
    (tmp_path / "02_fake_content-frank.ipynb").write_text("{ broken json")
    [s] = grade_notebook(tmp_path / "02_fake_content-frank.ipynb", cfg(), registry)
    assert s.score == 0 and s.max_score == 2 and s.reason.startswith("not a readable notebook")
    [s] = grade_notebook(fakes[0].parent / "nothing.ipynb", cfg(), registry)
    assert s.status == "error" and s.reason == "the file does not exist"


def test_renamed_function_cell_errors_and_memory_hogs(registry):
    ex = registry["content_cost"]
    status, reason = grade_exercise("def contentcost(a_C, a_G):\n    return 0\n", ex, registry, cfg())
    assert (status, reason) == ("missing", "the cell does not define a function named content_cost (renamed?)")
    status, reason = grade_exercise("x = undefined_name\n", ex, registry, cfg())
    assert status == "missing" and reason.startswith("running the cell raised NameError")
    hog = "def content_cost(a_C, a_G):\n    blob = bytearray(64 * 2**30)\n    return blob\n"
    status, reason = grade_exercise(hog, ex, registry, cfg(memory_mb=512))
    assert status == "failed" and "MemoryError" in reason and "line 2" in reason


def test_expected_exercises_follow_the_file_name_and_the_grade_ids(registry):
    nb = nbformat.v4.new_notebook()
    assert [e.grade_id for e in expected_exercises("x/02_fake_content_v2.ipynb", nb, registry)] == ["content_cost"]
    assert expected_exercises("renamed.ipynb", nb, registry) == []
    nb.cells.append(nbformat.v4.new_code_cell("", metadata={"nbgrader": {"grade_id": "add"}}))
    assert [e.grade_id for e in expected_exercises("renamed.ipynb", nb, registry)] == ["add"]


def test_command_line_report_csv_and_json(fakes, tmp_path, registry_dir, capsys):  # noqa: F811
    path = student_notebook(fakes, tmp_path, name="01_fake_numbers-gus.ipynb", add="def add(a, b:\n")
    parser = argparse.ArgumentParser(prog="course-nst")
    add_grade_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["grade", str(tmp_path), "--registry", "fake_nst_checks", "--exercise", "add",
                              "--csv", str(tmp_path / "s.csv"), "--json", str(tmp_path / "s.json")])
    args.notebooks = [str(path)]
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "01_fake_numbers-gus.ipynb" in out and "0/1" in out and "SyntaxError at line 1" in out
    assert "\nsandbox: " in out and "\ncheckers: 1 file(s) verified against" in out
    rows = list(csv.DictReader(open(tmp_path / "s.csv")))
    assert rows[0]["grade_id"] == "add" and rows[0]["score"] == "0.0" and rows[0]["status"] == "syntax error"
    data = json.loads((tmp_path / "s.json").read_text())
    assert data["totals"][str(path)] == {"score": 0.0, "max_score": 1.0}
    args.exercise = ["nope"]
    with pytest.raises(InputError, match="unknown exercise 'nope'"):
        args.func(args)
    args.notebooks = [str(tmp_path / "missing.ipynb")]
    with pytest.raises(InputError, match="no such notebook"):
        args.func(args)


def test_format_report_is_a_table_with_totals(fakes, tmp_path, registry):  # noqa: F811
    path = student_notebook(fakes, tmp_path, name="01_fake_numbers-hal.ipynb", add="def add(a, b:\n")
    text = format_report(grade_notebook(path, cfg(), registry, only=["add"]), ["sandbox: none (test)"])
    assert text.splitlines()[0].split() == ["notebook", "exercise", "score", "status", "reason"]
    assert text.splitlines()[-3:] == [f"total {path}: 0/1", "", "sandbox: none (test)"]


# ---------------------------------------------------------------- the course's notebooks


@pytest.mark.parametrize("path", REAL_NOTEBOOKS[:1], ids=[Path(p).name for p in REAL_NOTEBOOKS[:1]])
def test_a_course_notebook_filled_from_its_solutions_gets_full_marks(path, tmp_path):
    """The student release with every exercise cell put back as in the solution notebook."""
    summary = release_notebooks([path], tmp_path / "release")
    source = {c.metadata.get("nbgrader", {}).get("grade_id"): c.source for c in nbformat.read(path, as_version=4).cells}
    nb = nbformat.read(summary.released[0], as_version=4)
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid and cell.metadata.nbgrader.get("solution"):
            cell.source = source[gid]
    student = tmp_path / Path(path).name
    nbformat.write(nb, student)
    scores = grade_notebook(student, GradeConfig(timeout=300))
    assert scores and all(s.passed and s.score == s.max_score for s in scores), format_report(scores)


def test_only_imports_of_known_packages_from_cells_above_the_exercise_are_repeated():
    from course_nst.instructor.grading import notebook_imports

    cells = [nbformat.v4.new_code_cell("%matplotlib inline\nimport os, torch\nimport numpy as np\n"
                                       "from course_nst.patches import IMAGENET_MEAN\nx = np.zeros(3)\n"
                                       "from . import nothing"),
             nbformat.v4.new_code_cell("def broken(:"),
             nbformat.v4.new_code_cell("def f():\n    import math\n"),
             nbformat.v4.new_code_cell("import subprocess"),
             exercise_cell("content_cost", CONTENT_SOLUTION),
             nbformat.v4.new_code_cell("from course_nst.costs import content_cost")]
    nb = nbformat.v4.new_notebook(cells=cells)
    assert notebook_imports(nb, cells[4]) == ["import numpy as np", "from course_nst.patches import IMAGENET_MEAN"]


def test_a_stateful_exercise_is_judged_across_the_process_boundary():
    """optimization_step changes G in place and uses the optimizer's state: both cross to the kernel and back."""
    registry = load_registry(GradeConfig())
    nb = nbformat.read(next(p for p in REAL_NOTEBOOKS if Path(p).name.startswith("04_")), as_version=4)
    [source] = [c.source for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "optimization_step"]
    ex = registry["optimization_step"]
    assert grade_exercise(source, ex, registry, GradeConfig(timeout=60)) == ("passed", "")
    status, reason = grade_exercise(source.replace("optimizer.zero_grad()", "pass"), ex, registry,
                                    GradeConfig(timeout=60))
    assert status == "failed" and "the gradients accumulate" in reason
