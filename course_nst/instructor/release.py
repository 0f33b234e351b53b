"""Student releases of the solution notebooks.

The notebooks in ``notebooks/`` are the instructor (solution) versions. An
exercise cell holds the solution between two marker lines::

    def content_cost(a_C, a_G):
        \"\"\"...docstring...\"\"\"
        ### BEGIN SOLUTION
        return 0.5 * ((a_C - a_G) ** 2).sum()
        ### END SOLUTION

:func:`release_notebook` turns such a notebook into the student version, the
way ``nbgrader generate_assignment`` does:

* each ``### BEGIN SOLUTION`` ... ``### END SOLUTION`` block becomes
  ``# YOUR CODE HERE`` / ``raise NotImplementedError()`` at the indentation of
  the ``BEGIN`` line (so the signature and docstring stay), or
  ``YOUR ANSWER HERE`` in a markdown cell; a solution cell without markers is
  replaced as a whole, as nbgrader does;
* in the answer cell of a prediction question (its grade_id is in
  :data:`course_nst.checks.PREDICTIONS`) the solution block becomes
  ``<variable> = None`` instead, so the check cell below it says "not answered
  yet" rather than raising a ``NameError``;
* ``### BEGIN HIDDEN TESTS`` ... ``### END HIDDEN TESTS`` blocks are removed;
* outputs (and execution counts) are cleared in every nbgrader cell
  (exercises and their checks) and in every cell after the first exercise,
  since they would show the solution's results;
* nbgrader cell metadata (schema 3) is checked before anything is written and
  kept as is, so ``nbgrader generate_assignment`` / ``autograde`` work on the
  same notebooks.

Unbalanced or nested markers, markers in a cell that is not an nbgrader
solution cell, invalid nbgrader metadata, and a prediction question whose cells
do not fit together (:func:`prediction_problems`: an answer that is not in an
nbgrader solution cell would be handed out) are refused with an
:class:`~course_nst.errors.InputError` that names the notebook, the cell and the
line. Source notebooks are never overwritten.

Everything here is a pure function over ``nbformat.NotebookNode`` except
:func:`release_notebooks`, which reads and writes files. The command line::

    course-nst release [NOTEBOOKS...] --out DIR [--solutions]
    python -m course_nst.instructor.release [NOTEBOOKS...] --out DIR [--solutions]
"""

from __future__ import annotations

import argparse
import ast
import copy
import os
import re
import sys
import tempfile
import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import nbformat
from nbformat import NotebookNode

from ..errors import InputError

__all__ = [
    "CODE_STUB",
    "TEXT_STUB",
    "Block",
    "ReleaseSummary",
    "add_release_parser",
    "answer_key_markdown",
    "exercise_cells",
    "find_blocks",
    "nbgrader_metadata_problems",
    "prediction_problems",
    "prediction_stub",
    "release_notebook",
    "release_notebooks",
    "run_release",
    "solution_blocks",
    "solutions_notebook",
    "strip_blocks",
]

CODE_STUB = ("# YOUR CODE HERE", "raise NotImplementedError()")
TEXT_STUB = ("YOUR ANSWER HERE",)

SOLUTION = "SOLUTION"
HIDDEN_TESTS = "HIDDEN TESTS"

# "### BEGIN SOLUTION", "# END HIDDEN TESTS", ... on a line of its own.
_MARKER = re.compile(r"^(?P<indent>\s*)#+\s*(?P<kind>BEGIN|END)\s+(?P<what>SOLUTION|HIDDEN TESTS)\s*$")

# Anything that looks like a marker (any case, plural/singular, extra words) but is not exactly one:
# refused, so a typo never leaks hidden tests or swallows a signature.
_NEAR_MARKER = re.compile(r"^\s*#+\s*(BEGIN|END)[\s_-]*(SOLUTIONS?|HIDDEN[\s_-]*TESTS?)\b", re.IGNORECASE)
_NEAR_MARKER_LOOSE = re.compile(r"^\s*#+.*\b(BEGIN|END)\b.*\b(SOLUTIONS?|HIDDEN)\b", re.IGNORECASE)

_NBGRADER_KEYS = {
    "schema_version",
    "grade",
    "locked",
    "solution",
    "task",
    "grade_id",
    "points",
    "checksum",
    "cell_type",
}
_GRADE_ID = re.compile(r"^[a-zA-Z0-9_\-]*$")


@dataclass(frozen=True)
class Block:
    """One marked region of a cell: lines ``begin`` .. ``end`` (0-based, inclusive of the markers)."""

    what: str  # SOLUTION or HIDDEN TESTS
    begin: int
    end: int
    indent: str

    def inner(self, lines: Sequence[str]) -> list[str]:
        """The lines between the two markers."""
        return list(lines[self.begin + 1 : self.end])


def _where(cell_index: int | None, cell: NotebookNode | None) -> str:
    if cell_index is None:
        return ""
    gid = _grade_id(cell) if cell is not None else None
    return f"cell {cell_index}" + (f" (grade_id {gid!r})" if gid else "") + ": "


def find_blocks(source: str, where: str = "") -> list[Block]:
    """Find the marked blocks of one cell's source.

    Raises:
        InputError: markers that are unbalanced (an END without a BEGIN, a
            BEGIN never closed) or nested (a BEGIN inside an open block).
    """
    blocks: list[Block] = []
    open_: tuple[str, int, str] | None = None
    for lineno, line in enumerate(source.split("\n")):
        m = _MARKER.match(line)
        if not m:
            if _NEAR_MARKER.match(line) or _NEAR_MARKER_LOOSE.match(line):
                raise InputError(
                    f"{where}line {lineno + 1} looks like a marker but is not one: {line.strip()!r}; write "
                    "exactly '### BEGIN SOLUTION', '### END SOLUTION', '### BEGIN HIDDEN TESTS' or "
                    "'### END HIDDEN TESTS' (upper case, on a line of its own)"
                )
            continue
        what, kind = m["what"], m["kind"]
        if kind == "BEGIN":
            if open_ is not None:
                raise InputError(
                    f"{where}'### BEGIN {what}' at line {lineno + 1} is nested inside the "
                    f"'### BEGIN {open_[0]}' of line {open_[1] + 1}; close that block with "
                    f"'### END {open_[0]}' first"
                )
            open_ = (what, lineno, m["indent"])
        else:
            if open_ is None or open_[0] != what:
                raise InputError(
                    f"{where}'### END {what}' at line {lineno + 1} has no matching '### BEGIN {what}' before it"
                )
            blocks.append(Block(what, open_[1], lineno, open_[2]))
            open_ = None
    if open_ is not None:
        raise InputError(
            f"{where}'### BEGIN {open_[0]}' at line {open_[1] + 1} is never closed; add '### END {open_[0]}'"
        )
    return blocks


def prediction_stub(variable: str) -> tuple[str, ...]:
    """What a prediction's solution block becomes: the variable, not answered yet."""
    return (f"{variable} = None",)


def strip_blocks(
    source: str, cell_type: str = "code", where: str = "", stub: Sequence[str] | None = None
) -> tuple[str, bool]:
    """Replace solution blocks by the stub (by default :data:`CODE_STUB`, or :data:`TEXT_STUB` in
    a markdown cell) and drop hidden-test blocks.

    Returns ``(new_source, replaced_a_solution)``.
    """
    lines = source.split("\n")
    blocks = find_blocks(source, where)
    stub = stub if stub is not None else (CODE_STUB if cell_type == "code" else TEXT_STUB)
    out: list[str] = []
    pos = 0
    replaced = False
    for b in blocks:
        out += lines[pos : b.begin]
        if b.what == SOLUTION:
            out += [b.indent + s for s in stub]
            replaced = True
        pos = b.end + 1
    out += lines[pos:]
    return "\n".join(out), replaced


def _nbgrader(cell: NotebookNode) -> dict:
    meta = cell.get("metadata", {}).get("nbgrader")
    return meta if isinstance(meta, dict) else {}


def _grade_id(cell: NotebookNode) -> str | None:
    gid = _nbgrader(cell).get("grade_id")
    return gid if isinstance(gid, str) and gid else None


def _is_solution(cell: NotebookNode) -> bool:
    return bool(_nbgrader(cell).get("solution"))


def exercise_cells(nb: NotebookNode) -> list[tuple[int, NotebookNode]]:
    """The nbgrader solution cells of a notebook, as ``(index, cell)``."""
    return [(i, c) for i, c in enumerate(nb.cells) if _is_solution(c)]


def nbgrader_metadata_problems(nb: NotebookNode) -> list[str]:
    """What ``nbgrader`` (metadata schema 3) would reject in this notebook; empty if valid.

    The same rules as nbgrader's ``MetadataValidatorV3``, without needing nbgrader.
    """
    problems: list[str] = []
    ids: dict[str, int] = {}
    for i, cell in enumerate(nb.cells):
        if "nbgrader" not in cell.get("metadata", {}):
            continue
        meta = cell.metadata["nbgrader"]
        where = f"cell {i}"
        if not isinstance(meta, dict):
            problems.append(f"{where}: nbgrader metadata is not a dictionary")
            continue
        if meta.get("schema_version") != 3:
            problems.append(f"{where}: nbgrader schema_version is {meta.get('schema_version')!r}, expected 3")
        for key in ("grade", "locked", "solution"):
            if not isinstance(meta.get(key), bool):
                problems.append(f"{where}: nbgrader metadata needs a true/false {key!r}")
        extra = set(meta) - _NBGRADER_KEYS
        if extra:
            problems.append(f"{where}: unknown nbgrader metadata keys {sorted(extra)}")
        grade, solution, locked = bool(meta.get("grade")), bool(meta.get("solution")), bool(meta.get("locked"))
        task = bool(meta.get("task"))
        gid = meta.get("grade_id")
        if gid is not None and (not isinstance(gid, str) or not _GRADE_ID.match(gid)):
            problems.append(f"{where}: grade_id {gid!r} may only use letters, digits, '_' and '-'")
        if grade or solution or locked:
            if not gid:
                problems.append(f"{where}: nbgrader cell has no grade_id")
            elif gid in ids:
                problems.append(f"{where}: duplicate grade_id {gid!r} (also cell {ids[gid]})")
            else:
                ids[gid] = i
        if grade:
            pts = meta.get("points")
            if isinstance(pts, bool) or not isinstance(pts, (int, float)) or pts < 0:
                problems.append(f"{where}: graded cell {gid!r} needs a non-negative 'points'")
        if task and cell.cell_type != "markdown":
            problems.append(f"{where}: task cells have to be markdown")
        if not task and cell.cell_type == "markdown" and grade != solution:
            problems.append(f"{where}: a markdown nbgrader cell must be both grade and solution")
    return problems


def _known_predictions(predictions: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """``predictions``, or the course's (:data:`course_nst.checks.PREDICTIONS`)."""
    if predictions is not None:
        return predictions
    from ..checks import PREDICTIONS

    return PREDICTIONS


def _assigned_names(source: str) -> set[str] | None:
    """The names a piece of Python assigns at its top level (``None``: not valid Python)."""
    try:
        tree = ast.parse(textwrap.dedent(source))
    except SyntaxError:
        return None
    names: set[str] = set()
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, ast.AnnAssign | ast.AugAssign):
            targets = [node.target]
        names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


def _prediction_checks(source: str) -> list[tuple[str, str | None]]:
    """The ``check_prediction("<grade_id>", <name>)`` calls of a code cell, as (grade_id, name)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func = node.func
        called = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        first = node.args[0]
        if called == "check_prediction" and isinstance(first, ast.Constant) and isinstance(first.value, str):
            second = node.args[1] if len(node.args) > 1 else None
            found.append((first.value, second.id if isinstance(second, ast.Name) else None))
    return found


def prediction_problems(nb: NotebookNode, predictions: Mapping[str, Any]) -> list[str]:
    """What does not fit together in the notebook's prediction questions; empty if all is well.

    ``predictions`` maps grade_id to a :class:`~course_nst.checks.Prediction` (its ``variable``).
    The answer cell of a question must be an nbgrader solution *code* cell whose solution assigns
    the question's variable; a ``check_prediction("<grade_id>", <variable>)`` call must name a known
    question and its variable, and the notebook must have that question's answer cell (else the
    answer would be handed out as it stands).
    """
    problems: list[str] = []
    answered: set[str] = set()
    for i, cell in enumerate(nb.cells):
        gid = _grade_id(cell)
        where = _where(i, cell)
        if gid is not None and gid in predictions and _is_solution(cell):
            answered.add(gid)
            variable = predictions[gid].variable
            if cell.cell_type != "code":
                problems.append(f"{where}the answer cell of prediction question {gid!r} has to be a code cell")
                continue
            lines = cell.source.split("\n")
            blocks = [b for b in find_blocks(cell.source, where) if b.what == SOLUTION]
            solution = "\n".join(line for b in blocks for line in b.inner(lines)) if blocks else cell.source
            names = _assigned_names(solution)
            if names is None:
                problems.append(f"{where}the solution of prediction question {gid!r} is not valid Python")
            elif variable not in names:
                problems.append(
                    f"{where}the solution of prediction question {gid!r} does not assign {variable}; "
                    f"write '{variable} = <the answer>' between the solution markers"
                )
        if cell.cell_type != "code":
            continue
        for asked, name in _prediction_checks(cell.source):
            if asked not in predictions:
                problems.append(
                    f"{where}check_prediction({asked!r}, ...) names no known prediction question "
                    f"(known: {', '.join(sorted(predictions)) or 'none'})"
                )
            elif name != predictions[asked].variable:
                problems.append(
                    f"{where}check_prediction({asked!r}, {name or '...'}) should be given "
                    f"{predictions[asked].variable}, the question's variable"
                )
            elif asked not in answered:
                problems.append(
                    f"{where}check_prediction({asked!r}, ...) comes before, or without, the answer cell of "
                    f"{asked!r} (an nbgrader solution cell with grade_id {asked!r}); the answer would be handed out"
                )
    return problems


def _check_notebook(nb: NotebookNode, name: str, predictions: Mapping[str, Any]) -> None:
    problems = nbgrader_metadata_problems(nb)
    if problems:
        raise InputError(f"{name}: invalid nbgrader metadata: " + "; ".join(problems))
    for i, cell in enumerate(nb.cells):
        blocks = find_blocks(cell.source, f"{name}: " + _where(i, cell))
        if any(b.what == SOLUTION for b in blocks) and not _is_solution(cell):
            raise InputError(
                f"{name}: {_where(i, cell)}has '### BEGIN SOLUTION' but is not an nbgrader solution "
                "cell; give it metadata nbgrader.solution = true and a grade_id"
            )
    problems = prediction_problems(nb, predictions)
    if problems:
        raise InputError(f"{name}: prediction questions: " + "; ".join(problems))


def release_notebook(
    nb: NotebookNode, name: str = "notebook", predictions: Mapping[str, Any] | None = None
) -> NotebookNode:
    """The student version of a solution notebook (a new notebook; ``nb`` is unchanged).

    ``predictions``: grade_id -> Prediction (default :data:`course_nst.checks.PREDICTIONS`).

    Raises:
        InputError: unbalanced or nested markers, solution markers outside a
            solution cell, invalid nbgrader metadata, or prediction cells that do
            not fit together.
    """
    predictions = _known_predictions(predictions)
    _check_notebook(nb, name, predictions)
    out = copy.deepcopy(nb)
    out.metadata.pop("celltoolbar", None)
    first_exercise = min((i for i, _ in exercise_cells(out)), default=None)
    for i, cell in enumerate(out.cells):
        gid = _grade_id(cell)
        prediction = predictions.get(gid) if gid is not None and _is_solution(cell) else None
        stub = prediction_stub(prediction.variable) if prediction is not None else None
        new, replaced = strip_blocks(cell.source, cell.cell_type, f"{name}: " + _where(i, cell), stub)
        if _is_solution(cell) and not replaced:
            new = "\n".join(stub or (CODE_STUB if cell.cell_type == "code" else TEXT_STUB))
        cell.source = new
        if cell.cell_type == "code":
            after = first_exercise is not None and i >= first_exercise
            if after or "nbgrader" in cell.metadata:
                cell.outputs = []
                cell.execution_count = None
    nbformat.validate(out)
    return out


def solution_blocks(nb: NotebookNode) -> dict[str, list[str]]:
    """The solution lines of each exercise, keyed by grade_id (for answer keys and tests)."""
    found: dict[str, list[str]] = {}
    for i, cell in exercise_cells(nb):
        lines = cell.source.split("\n")
        blocks = [b for b in find_blocks(cell.source, _where(i, cell)) if b.what == SOLUTION]
        key = _grade_id(cell) or f"cell-{i}"
        found[key] = [line for b in blocks for line in b.inner(lines)] if blocks else lines
    return found


def solutions_notebook(
    nb: NotebookNode, name: str = "notebook", predictions: Mapping[str, Any] | None = None
) -> NotebookNode:
    """The instructor's clean copy: marker lines removed, solutions, hidden tests and outputs kept."""
    _check_notebook(nb, name, _known_predictions(predictions))
    out = copy.deepcopy(nb)
    for cell in out.cells:
        cell.source = "\n".join(line for line in cell.source.split("\n") if not _MARKER.match(line))
    return out


def answer_key_markdown(
    notebooks: Iterable[tuple[str, NotebookNode]], predictions: Mapping[str, Any] | None = None
) -> str:
    """A Markdown answer key: the solution of every exercise and prediction question (with the
    reason it is right), notebook by notebook."""
    predictions = _known_predictions(predictions)
    parts = [
        "# Answer key",
        "",
        "The solution of every exercise, as written between the "
        "`### BEGIN SOLUTION` / `### END SOLUTION` markers of the solution notebooks.",
        "",
    ]
    for name, nb in notebooks:
        cells = dict((_grade_id(c) or f"cell-{i}", c) for i, c in exercise_cells(nb))
        if not cells:
            continue
        parts += [f"## {name}", ""]
        for gid, lines in solution_blocks(nb).items():
            lang = "python" if cells[gid].cell_type == "code" else ""
            full = cells[gid].source
            head = full.split("\n", 1)[0] if cells[gid].cell_type == "code" else ""
            parts += [f"### `{gid}`", ""]
            if head.startswith("def "):
                parts += [f"In `{head.rstrip(':')}`:", ""]
            parts += [f"```{lang}", "\n".join(lines).rstrip(), "```", ""]
            if gid in predictions:
                parts += [f"Why: {predictions[gid].why}", ""]
    return "\n".join(parts)


@dataclass
class ReleaseSummary:
    """What :func:`release_notebooks` wrote."""

    released: list[Path] = field(default_factory=list)
    solutions: list[Path] = field(default_factory=list)
    answer_key: Path | None = None
    exercises: dict[str, list[str]] = field(default_factory=dict)  # notebook name -> grade_ids
    predictions: dict[str, list[str]] = field(default_factory=dict)  # notebook name -> prediction grade_ids


def _read(path: Path) -> NotebookNode:
    if not path.is_file():
        raise InputError(f"{path}: no such notebook")
    try:
        return nbformat.read(path, as_version=4)
    except Exception as e:
        raise InputError(f"{path}: not a readable Jupyter notebook ({type(e).__name__}: {e})") from None


def _same_file_as_any(target: Path, sources: Sequence[Path]) -> bool:
    """``target`` is (a hard or symbolic link to) one of ``sources``."""
    if not target.exists():
        return False
    for source in sources:
        try:
            if source.exists() and os.path.samefile(target, source):
                return True
        except OSError:
            continue
    return False


def _write_new(write: Callable[[Path], object], target: Path) -> None:
    """Write through a temporary file and rename it onto ``target``, so a hard link at ``target``
    is replaced, never written through (the file it links to stays as it was)."""
    handle, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(handle)
    try:
        write(Path(temp))
        os.chmod(temp, 0o666 & ~_umask())
        os.replace(temp, target)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def release_notebooks(
    paths: Sequence[str | Path],
    out_dir: str | Path,
    solutions: bool = False,
    predictions: Mapping[str, Any] | None = None,
) -> ReleaseSummary:
    """Write the student version of each notebook to ``out_dir`` (same file names).

    With ``solutions=True`` also writes ``out_dir/solutions/``: a clean copy of
    each solution notebook (markers removed) and ``ANSWER_KEY.md``.

    Every notebook is read and checked before anything is written, so a bad
    notebook leaves ``out_dir`` untouched.

    Raises:
        InputError: no notebooks, a missing or unreadable notebook, two notebooks
            with the same name, bad markers or metadata, or an output path that
            would overwrite a source notebook.
    """
    files = [Path(p) for p in paths]
    if not files:
        raise InputError("no notebooks to release; name them, e.g. notebooks/*.ipynb")
    out = Path(out_dir)
    sources = {p.resolve() for p in files}
    names = [p.name for p in files]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise InputError(f"two notebooks have the same name {dup[0]!r}; release them into different folders")
    targets = [out / p.name for p in files] + ([out / "solutions" / p.name for p in files] if solutions else [])
    for t in targets:
        if t.resolve() in sources or _same_file_as_any(t, files):
            raise InputError(f"--out {out} would overwrite the source notebook {t}; choose another folder")

    predictions = _known_predictions(predictions)
    released: list[tuple[Path, NotebookNode, NotebookNode]] = []
    for p in files:
        nb = _read(p)
        released.append((p, nb, release_notebook(nb, str(p), predictions)))

    summary = ReleaseSummary()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"cannot create the output folder {out}: {e.strerror}") from None
    for p, nb, student in released:
        target = out / p.name
        _write_new(partial(nbformat.write, student), target)
        summary.released.append(target)
        ids = [g for g in (_grade_id(c) for _, c in exercise_cells(nb)) if g]
        summary.exercises[p.name] = [g for g in ids if g not in predictions]
        summary.predictions[p.name] = [g for g in ids if g in predictions]
    if solutions:
        sol = out / "solutions"
        sol.mkdir(exist_ok=True)
        for p, nb, _ in released:
            clean = solutions_notebook(nb, str(p), predictions)
            _write_new(partial(nbformat.write, clean), sol / p.name)
            summary.solutions.append(sol / p.name)
        key = sol / "ANSWER_KEY.md"
        text = answer_key_markdown(((p.name, nb) for p, nb, _ in released), predictions)
        _write_new(lambda t: t.write_text(text, encoding="utf-8"), key)
        summary.answer_key = key
    return summary


# ---------------------------------------------------------------- command line


def _default_notebooks() -> list[str]:
    return sorted(str(p) for p in Path("notebooks").glob("*.ipynb"))


def add_release_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``release`` subcommand to ``course-nst``'s subparsers."""
    p = subparsers.add_parser(
        "release",
        help="make student notebooks from the solution notebooks",
        description="Write the student version of each solution notebook: solution blocks become "
        "'raise NotImplementedError()' (in a prediction question's answer cell: '<variable> = None'), "
        "hidden tests are removed, outputs after the first exercise are cleared. Source notebooks are "
        "never modified.",
    )
    _fill_release_parser(p)
    return p


def _fill_release_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("notebooks", nargs="*", metavar="NOTEBOOK", help="solution notebooks (default: notebooks/*.ipynb)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the student notebooks")
    p.add_argument(
        "--solutions", action="store_true", help="also write DIR/solutions/: clean solution notebooks and ANSWER_KEY.md"
    )
    p.set_defaults(func=run_release)


def run_release(args: argparse.Namespace) -> int:
    """Run ``course-nst release``; returns the exit code. Bad input raises InputError."""
    paths = list(args.notebooks) or _default_notebooks()
    summary = release_notebooks(paths, args.out, solutions=args.solutions)
    for path in summary.released:
        ids = summary.exercises.get(path.name, [])
        line = f"released {path}  ({len(ids)} exercise(s): {', '.join(ids) or '-'}"
        questions = summary.predictions.get(path.name, [])
        if questions:
            line += f"; {len(questions)} prediction question(s): {', '.join(questions)}"
        print(line + ")")
    for path in summary.solutions:
        print(f"solutions {path}")
    if summary.answer_key:
        print(f"answer key {summary.answer_key}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m course_nst.instructor.release`` is ``course-nst release``."""
    from ..cli import main as cli_main

    return cli_main(["release", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
