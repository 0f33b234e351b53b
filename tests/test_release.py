"""Student releases: markers, stubs, outputs, metadata, refusals, and the real notebooks.

The small notebooks built here (and the fake exercise registry ``fake_nst_checks``)
are shared with ``test_grading.py``.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from glob import glob
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from course_nst.errors import InputError
from course_nst.release import (
    find_blocks,
    nbgrader_metadata_problems,
    release_notebook,
    release_notebooks,
    solution_blocks,
    strip_blocks,
)

REPO = Path(__file__).resolve().parents[1]
REAL_NOTEBOOKS = sorted(glob(str(REPO / "notebooks" / "*.ipynb")))

# ---------------------------------------------------------------- shared fixtures

FAKE_REGISTRY = '''
"""A two-exercise, one-prediction registry for the tests, built like course_nst.checks."""
import torch
from course_nst import costs
from course_nst.checks._common import Exercise, Prediction


def _diagnose_add(fn):
    got = fn(2, 3)
    return [] if got == 5 else [f"add(2, 3) should be 5, got {got!r}"]


def _diagnose_content_cost(fn):
    g = torch.Generator().manual_seed(0)
    a_C = torch.rand(1, 3, 4, 5, generator=g)
    a_G = torch.rand(1, 3, 4, 5, generator=g)
    got = fn(a_C, a_G)
    want = costs.content_cost(a_C, a_G)
    if not torch.is_tensor(got):
        return [f"return a tensor, not {type(got).__name__}"]
    if not torch.allclose(got.float(), want, rtol=1e-4):
        return [f"expected {want.item():.4f}, got {got.item():.4f}"]
    return []


EXERCISES = {
    "add": Exercise("add", "add", _diagnose_add, "01_fake_numbers", "adding two numbers", 1),
    "content_cost": Exercise("content_cost", "content_cost", _diagnose_content_cost,
                             "02_fake_content", "the content cost J = 1/2 ||a_C - a_G||^2", 2),
}


PREDICTIONS = {
    "predict_sum": Prediction(
        grade_id="predict_sum",
        variable="predict_sum",
        notebook="03_fake_predict",
        question="How much is 2 + 3?",
        answer=5,
        why="two and three make five.",
        hint="count on your fingers.",
        points=2,
    ),
}


def check(fn):
    EXERCISES[fn.__name__].check(fn)


def check_prediction(grade_id, value):
    PREDICTIONS[grade_id].check(value)
'''


def nbgrader_meta(grade_id: str, solution: bool) -> dict:
    return {
        "nbgrader": {
            "grade": False,
            "grade_id": grade_id,
            "locked": not solution,
            "schema_version": 3,
            "solution": solution,
            "task": False,
        }
    }


def exercise_cell(grade_id: str, source: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_code_cell(source, metadata=nbgrader_meta(grade_id, True))


def check_cell(grade_id: str, function: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_code_cell(f"check({function})", metadata=nbgrader_meta(grade_id + "_check", False))


ADD_SOLUTION = '''def add(a, b):
    """Return a + b."""
    ### BEGIN SOLUTION
    total = a + b
    return total
    ### END SOLUTION'''

CONTENT_SOLUTION = '''def content_cost(a_C, a_G):
    """J_content = 1/2 * sum (a_C - a_G)^2."""
    diff = a_C - a_G
    ### BEGIN SOLUTION
    J = 0.5 * (diff ** 2).sum()
    return J
    ### END SOLUTION'''


def fake_notebooks(folder: Path, registry_dir: Path) -> list[Path]:
    """Two small solution notebooks in the shape of the course's, executed (with outputs)."""
    setup = (
        f"import sys; sys.path.insert(0, {str(registry_dir)!r})\n"
        "import torch\nfrom fake_nst_checks import check\nprint('setup done')"
    )
    nb1 = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell("# Adding numbers"),
            nbformat.v4.new_code_cell(setup),
            exercise_cell("add", ADD_SOLUTION),
            check_cell("add", "add"),
            nbformat.v4.new_code_cell("print(sum([2, 3]))  # the tested version"),
            nbformat.v4.new_markdown_cell(
                "Why?\n### BEGIN SOLUTION\nBecause 2 + 3 = 5.\n### END SOLUTION",
                metadata={
                    "nbgrader": {
                        "grade": True,
                        "grade_id": "why",
                        "locked": False,
                        "points": 1,
                        "schema_version": 3,
                        "solution": True,
                        "task": False,
                    }
                },
            ),
            nbformat.v4.new_code_cell(
                "assert add(2, 3) == 5\n### BEGIN HIDDEN TESTS\nassert add(-1, 1) == 0\n### END HIDDEN TESTS",
                metadata={
                    "nbgrader": {
                        "grade": True,
                        "grade_id": "add_tests",
                        "locked": True,
                        "points": 1,
                        "schema_version": 3,
                        "solution": False,
                        "task": False,
                    }
                },
            ),
        ]
    )
    nb2 = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(setup),
            exercise_cell("content_cost", CONTENT_SOLUTION),
            check_cell("content_cost", "content_cost"),
            nbformat.v4.new_code_cell(
                "from course_nst.costs import content_cost\n"
                "print(round(float(content_cost(torch.ones(1, 1, 2, 2), torch.zeros(1, 1, 2, 2))), 4))"
            ),
        ]
    )
    paths = []
    for name, nb in (("01_fake_numbers.ipynb", nb1), ("02_fake_content.ipynb", nb2)):
        for i, cell in enumerate(nb.cells):  # pretend it was executed
            if cell.cell_type == "code":
                cell.execution_count = i
                cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"output {i}\n")]
        path = folder / name
        nbformat.write(nb, path)
        paths.append(path)
    return paths


@pytest.fixture(scope="session")
def registry_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("registry")
    (d / "fake_nst_checks.py").write_text(FAKE_REGISTRY)
    sys.path.insert(0, str(d))
    return d


@pytest.fixture()
def fakes(tmp_path, registry_dir) -> list[Path]:
    src = tmp_path / "src"
    src.mkdir()
    return fake_notebooks(src, registry_dir)


# ---------------------------------------------------------------- helpers for the assertions


def assert_released_properly(source_nb, released_nb, predictions=None) -> None:
    """No solution line survives, every code exercise raises NotImplementedError (every prediction's
    answer cell sets its variable to None), metadata valid."""
    from nbgrader.nbgraderformat import MetadataValidator

    if predictions is None:
        from course_nst.checks import PREDICTIONS as predictions

    nbformat.validate(released_nb)
    MetadataValidator().validate_nb(released_nb)
    assert nbgrader_metadata_problems(released_nb) == []
    assert len(released_nb.cells) == len(source_nb.cells)
    for before, after in zip(source_nb.cells, released_nb.cells, strict=True):
        assert after.metadata == before.metadata
        assert "BEGIN SOLUTION" not in after.source and "HIDDEN TESTS" not in after.source
        blocks = find_blocks(before.source)
        lines = before.source.split("\n")
        outside = {l.strip() for i, l in enumerate(lines) if not any(b.begin <= i <= b.end for b in blocks)}
        kept = {l.strip() for l in after.source.split("\n")}
        for b in blocks:
            for line in b.inner(lines):
                if line.strip() and line.strip() not in outside:
                    assert line.strip() not in kept, f"solution line survived: {line!r}"
        gid = before.metadata.get("nbgrader", {}).get("grade_id")
        if before.metadata.get("nbgrader", {}).get("solution") and gid in predictions:
            ns: dict = {}
            exec(after.source, ns)
            assert ns[predictions[gid].variable] is None, after.source
        elif before.metadata.get("nbgrader", {}).get("solution") and before.cell_type == "code":
            tree = ast.parse(after.source)
            raises = [n for n in ast.walk(tree) if isinstance(n, ast.Raise) and "NotImplementedError" in ast.unparse(n)]
            assert raises, f"exercise {before.metadata.nbgrader.grade_id} does not raise NotImplementedError"


# ---------------------------------------------------------------- markers


def test_blocks_are_replaced_at_their_indentation_keeping_signature_and_docstring():
    new, replaced = strip_blocks(CONTENT_SOLUTION)
    assert replaced
    assert new == (
        'def content_cost(a_C, a_G):\n    """J_content = 1/2 * sum (a_C - a_G)^2."""\n'
        "    diff = a_C - a_G\n    # YOUR CODE HERE\n    raise NotImplementedError()"
    )
    ns: dict = {}
    exec(new, ns)
    with pytest.raises(NotImplementedError):
        ns["content_cost"](1, 2)
    assert strip_blocks("Text\n### BEGIN SOLUTION\nanswer\n### END SOLUTION", "markdown")[0] == "Text\nYOUR ANSWER HERE"
    assert strip_blocks("a = 1\n### BEGIN HIDDEN TESTS\nassert a\n### END HIDDEN TESTS\nb = 2")[0] == "a = 1\nb = 2"


@pytest.mark.parametrize(
    "source, words",
    [
        ("x = 1\n### END SOLUTION", "no matching '### BEGIN SOLUTION'"),
        ("### BEGIN SOLUTION\nx = 1", "never closed"),
        ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n### END SOLUTION", "nested"),
        ("### BEGIN SOLUTION\n### BEGIN HIDDEN TESTS\n### END HIDDEN TESTS\n### END SOLUTION", "nested"),
        ("### BEGIN SOLUTION\nx = 1\n### END HIDDEN TESTS", "no matching '### BEGIN HIDDEN TESTS'"),
    ],
)
def test_unbalanced_or_nested_markers_are_refused_with_the_line(source, words):
    with pytest.raises(InputError, match=words) as info:
        find_blocks(source, "nb.ipynb: cell 3: ")
    assert "line" in str(info.value) and "cell 3" in str(info.value)
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------- one notebook


def test_release_of_a_small_notebook(fakes):
    source = nbformat.read(fakes[0], as_version=4)
    released = release_notebook(source, "01_fake_numbers.ipynb")
    assert_released_properly(source, released)
    cells = released.cells
    assert cells[1].outputs and cells[1].execution_count == 1  # before the first exercise: kept
    assert all(c.outputs == [] and c.execution_count is None for c in cells[2:] if c.cell_type == "code")
    assert (
        cells[2].source
        == 'def add(a, b):\n    """Return a + b."""\n    # YOUR CODE HERE\n    raise NotImplementedError()'
    )
    assert cells[5].source == "Why?\nYOUR ANSWER HERE"
    assert cells[6].source == "assert add(2, 3) == 5"
    assert "total = a + b" in source.cells[2].source  # the input is not modified
    assert solution_blocks(source) == {"add": ["    total = a + b", "    return total"], "why": ["Because 2 + 3 = 5."]}


def test_solution_cell_without_markers_is_replaced_whole_like_nbgrader():
    nb = nbformat.v4.new_notebook(cells=[exercise_cell("free", "x = 42")])
    assert release_notebook(nb).cells[0].source == "# YOUR CODE HERE\nraise NotImplementedError()"


def test_markers_outside_a_solution_cell_and_bad_metadata_are_refused():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("### BEGIN SOLUTION\nx = 1\n### END SOLUTION")])
    with pytest.raises(InputError, match="not an nbgrader solution cell"):
        release_notebook(nb, "x.ipynb")
    nb = nbformat.v4.new_notebook(cells=[exercise_cell("same", "x = 1"), exercise_cell("same", "y = 1")])
    with pytest.raises(InputError, match="duplicate grade_id 'same'"):
        release_notebook(nb, "x.ipynb")
    graded = nbformat.v4.new_code_cell("assert True", metadata=nbgrader_meta("t", False))
    graded.metadata.nbgrader["grade"] = True  # no points
    with pytest.raises(InputError, match="needs a non-negative 'points'"):
        release_notebook(nbformat.v4.new_notebook(cells=[graded]), "x.ipynb")


# ---------------------------------------------------------------- files and the command line


def test_release_notebooks_writes_students_and_solutions_and_never_overwrites(fakes, tmp_path):
    before = [p.read_bytes() for p in fakes]
    out = tmp_path / "release"
    summary = release_notebooks(fakes, out, solutions=True)
    assert [p.name for p in summary.released] == ["01_fake_numbers.ipynb", "02_fake_content.ipynb"]
    assert summary.exercises == {"01_fake_numbers.ipynb": ["add", "why"], "02_fake_content.ipynb": ["content_cost"]}
    sol = nbformat.read(out / "solutions" / "01_fake_numbers.ipynb", as_version=4)
    assert "total = a + b" in sol.cells[2].source and "BEGIN SOLUTION" not in sol.cells[2].source
    assert sol.cells[2].outputs  # the instructor's copy keeps its outputs
    key = (out / "solutions" / "ANSWER_KEY.md").read_text()
    assert "### `content_cost`" in key and "J = 0.5 * (diff ** 2).sum()" in key
    assert [p.read_bytes() for p in fakes] == before
    with pytest.raises(InputError, match="would overwrite the source notebook"):
        release_notebooks(fakes, fakes[0].parent)
    assert [p.read_bytes() for p in fakes] == before


def test_a_bad_notebook_stops_the_release_before_anything_is_written(fakes, tmp_path):
    bad = tmp_path / "03_bad.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[exercise_cell("b", "### BEGIN SOLUTION\nx = 1")]), bad)
    with pytest.raises(InputError, match=r"03_bad.ipynb: cell 0 \(grade_id 'b'\).*never closed"):
        release_notebooks([*fakes, bad], tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(InputError, match="no such notebook"):
        release_notebooks([tmp_path / "missing.ipynb"], tmp_path / "out")
    (tmp_path / "junk.ipynb").write_text("{not json")
    with pytest.raises(InputError, match="not a readable Jupyter notebook"):
        release_notebooks([tmp_path / "junk.ipynb"], tmp_path / "out")


def test_command_line(fakes, tmp_path, capsys):
    import argparse

    from course_nst.release import add_release_parser

    parser = argparse.ArgumentParser(prog="course-nst")
    add_release_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["release", *map(str, fakes), "--out", str(tmp_path / "o")])
    assert args.func(args) == 0
    assert "released" in capsys.readouterr().out
    proc = subprocess.run(
        [sys.executable, "-m", "course_nst.release", str(tmp_path / "nope.ipynb"), "--out", str(tmp_path / "o2")],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert proc.returncode == 2 and proc.stderr.strip().endswith("no such notebook")


def test_released_small_notebook_runs_to_the_end_reporting_not_implemented(fakes, tmp_path):
    release_notebooks(fakes[1:], tmp_path / "o")
    nb = nbformat.read(tmp_path / "o" / fakes[1].name, as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    texts = ["".join(o.get("text", "") for o in c.outputs) for c in nb.cells]
    assert "not implemented yet" in texts[2]
    assert texts[3].strip() == "2.0"  # the cell after the exercise uses the tested version


# ---------------------------------------------------------------- the course's notebooks


@pytest.mark.parametrize("path", REAL_NOTEBOOKS, ids=[Path(p).name for p in REAL_NOTEBOOKS])
def test_release_of_every_course_notebook(path, tmp_path):
    source = nbformat.read(path, as_version=4)
    summary = release_notebooks([path], tmp_path)
    released = nbformat.read(summary.released[0], as_version=4)
    assert_released_properly(source, released)
    assert summary.exercises[Path(path).name], "a course notebook without exercises"
    from course_nst.checks import EXERCISES, PREDICTIONS

    prelude = "import math\nimport numpy as np\nimport torch\nimport torch.nn.functional as F\nimport course_nst\n"
    for cell in released.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.cell_type == "code" and gid in EXERCISES:
            ns: dict = {}
            exec(prelude + cell.source, ns)
            result = EXERCISES[gid].evaluate(ns[EXERCISES[gid].function])
            assert result.not_implemented, (gid, result.report())
    for cell in source.cells:  # the solution notebook's predictions are right
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.cell_type == "code" and gid in PREDICTIONS and cell.metadata.nbgrader.get("solution"):
            ns = {}
            exec(prelude + cell.source, ns)
            assert PREDICTIONS[gid].evaluate(ns[PREDICTIONS[gid].variable]).passed, (gid, cell.source)


@pytest.mark.parametrize("path", REAL_NOTEBOOKS[:1], ids=[Path(p).name for p in REAL_NOTEBOOKS[:1]])
def test_a_released_course_notebook_runs_to_the_end_with_checks_saying_not_implemented(path, tmp_path):
    """One notebook end to end (they take a minute or more each): every cell runs, each check says so."""
    summary = release_notebooks([path], tmp_path)
    nb = nbformat.read(summary.released[0], as_version=4)
    NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(Path(path).parent)}}
    ).execute()
    from course_nst.checks import PREDICTIONS

    checks = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id", "").endswith("_check")]
    assert checks
    for cell in checks:
        said = "not answered yet" if cell.metadata.nbgrader.grade_id.removesuffix("_check") in PREDICTIONS else None
        assert (said or "not implemented yet") in "".join(o.get("text", "") for o in cell.outputs)
