"""Grading student notebooks: one score per exercise, from the pristine checkers.

``course-nst grade STUDENT_NOTEBOOK...`` gives each exercise of each notebook a
score and a reason, and never crashes on a broken notebook: a syntax error, an
infinite loop, a deleted or renamed function, a kernel killed for memory, an
unreadable file all become a score of zero with a reason.

How a score is computed (and why a student's notebook cannot forge it)
---------------------------------------------------------------------
The student's notebook is *never executed as a whole*, and nothing it printed
or stored is read. For every exercise the grader:

1. finds the exercise cell by its nbgrader ``grade_id`` (not by position) and
   checks its syntax in the grading process (``SyntaxError at line N``);
2. builds a four-cell grading notebook and runs it with ``nbclient`` in a
   *fresh kernel per exercise*, started in a temporary directory, with a time
   limit per cell and a memory limit (``RLIMIT_AS``, set inside the kernel):

   a. **setup** (grader code, runs before any student code): imports the
      standard names of the notebooks' setup cell (:data:`STANDARD_IMPORTS`),
      imports the checkers (the registry, ``course_nst.checks`` by default)
      and keeps its own reference to the exercise's checker, then snapshots
      *by identity* every attribute of the ``course_nst`` modules, of the
      registry, of the classes they define, of the exercise object, of
      ``torch``, ``torch.Tensor``, ``torch.nn.functional``, ``numpy``, ``math``
      and ``builtins``;
   b. **the student's exercise cell** -- only that cell's source;
   c. **evaluate** (grader code): looks the function up by name, refuses the
      package's own implementation, compares the snapshot (anything the
      student's cell replaced or deleted -- a patched checker, a patched
      reference cost, a patched ``torch.allclose`` -- is reported as tampering
      and scores zero), calls the checker it kept in (a) and compares the
      snapshot again (to catch a function *body* that patches things while it
      is being checked);
   d. **report** (grader code): prints the verdict as one JSON line prefixed
      by a random token that the grading process creates for this run and that
      enters the kernel only in this last cell, i.e. after the student's code
      has finished running. Before printing it checks that no trace/profile
      hook or extra thread (left behind by student code) is alive.

3. reads *only* that token-prefixed line of cell (d), parses it as plain JSON
   (never pickle) and validates its fields; anything else (no line, a wrong
   token, a malformed verdict) scores zero. Points come from the registry in
   the grading process, not from the kernel.

So code elsewhere in the notebook cannot change a score (it is not run), a
checker or reference redefined anywhere in the notebook is not the one used,
a redefinition inside the exercise cell is detected, and printed "passed"
text is ignored. What this does *not* defend against: Python offers no
sandbox, so student code written specifically to defeat this grader (walking
the garbage collector to find and rewrite the grader's own objects, or
writing to files the grading user may write) could still succeed. For
high-stakes grading run ``course-nst grade`` as an unprivileged user in a
container with no network and a read-only install.

Exercise cells must be self-contained apart from :data:`STANDARD_IMPORTS`, the
import statements of the cells above the exercise that import from the packages
in :data:`IMPORTABLE` (run in the grading kernel before the student's cell; an
import of an installed package cannot change the checkers; everything else in
those cells is not run), and the package's tested versions of the *other*
exercises' functions (e.g. a ``style_cost`` cell may call ``layer_style_cost``).

The registry is a module with ``EXERCISES: dict[str, Exercise]`` keyed by
grade_id (see :mod:`course_nst.checks._common`); :class:`GradeConfig` names it,
so tests and other courses can pass their own.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import csv
import importlib
import json
import secrets
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import nbformat
from nbformat import NotebookNode

from .errors import InputError

__all__ = [
    "GradeConfig",
    "STANDARD_IMPORTS",
    "Score",
    "add_grade_parser",
    "expected_exercises",
    "format_report",
    "grade_exercise",
    "grade_notebook",
    "grade_notebooks",
    "load_registry",
    "notebook_imports",
    "run_grade",
    "write_csv",
    "write_json",
]

#: Names every grading kernel defines before the student's cell runs (the notebooks' setup imports).
STANDARD_IMPORTS = """\
import math
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import course_nst
from course_nst import costs
"""

STATUSES = ("passed", "failed", "not implemented", "missing", "syntax error", "timed out",
            "crashed", "tampered", "error")


@dataclass(frozen=True)
class GradeConfig:
    """How to grade.

    Attributes:
        registry: module that defines ``EXERCISES`` (grade_id -> Exercise).
        timeout: seconds each cell of the grading notebook may run (the setup
            cell, which imports torch, gets at least ``setup_timeout``).
        memory_mb: memory the kernel may use on top of what it holds after
            importing torch and the checkers.
        sys_path: folders to put in front of ``sys.path`` (parent and kernel)
            to import the registry from.
        kernel_name: Jupyter kernel to run in.
    """

    registry: str = "course_nst.checks"
    timeout: float = 60.0
    memory_mb: int = 4096
    sys_path: tuple[str, ...] = ()
    kernel_name: str = "python3"
    setup_timeout: float = 180.0


@dataclass
class Score:
    """The grade of one exercise of one notebook."""

    notebook: str
    grade_id: str
    function: str
    score: float
    max_score: float
    status: str
    reason: str = ""
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.status == "passed"


# ---------------------------------------------------------------- the registry


@contextlib.contextmanager
def _extra_path(paths: Sequence[str]):
    old = list(sys.path)
    sys.path[:0] = [str(p) for p in paths]
    try:
        yield
    finally:
        sys.path[:] = old


def load_registry(config: GradeConfig = GradeConfig()) -> Mapping[str, Any]:
    """Import ``config.registry`` and return its ``EXERCISES``."""
    with _extra_path(config.sys_path):
        try:
            module = importlib.import_module(config.registry)
        except ImportError as e:
            raise InputError(f"cannot import the exercise registry {config.registry!r}: {e}") from None
    exercises = getattr(module, "EXERCISES", None)
    if not isinstance(exercises, Mapping):
        raise InputError(f"{config.registry} has no EXERCISES dictionary")
    return exercises


def _stem(name: str) -> str:
    p = Path(str(name))
    return p.stem if p.suffix == ".ipynb" else p.name


def _cells_by_grade_id(nb: NotebookNode) -> dict[str, NotebookNode]:
    found: dict[str, NotebookNode] = {}
    for cell in nb.get("cells", []):
        meta = cell.get("metadata", {}).get("nbgrader")
        gid = meta.get("grade_id") if isinstance(meta, dict) else None
        if isinstance(gid, str) and gid not in found:
            found[gid] = cell
    return found


def expected_exercises(path: str | Path, nb: NotebookNode | None, registry: Mapping[str, Any]) -> list[Any]:
    """The exercises a notebook should contain.

    Those of every course notebook that the file name starts with (a student may
    add a suffix: ``02_content_cost-alice.ipynb``) or whose grade_ids appear in it,
    so a deleted exercise cell is still graded (as zero).
    """
    stem = Path(path).stem
    present = set(_cells_by_grade_id(nb)) if nb is not None else set()
    notebooks = {_stem(e.notebook) for e in registry.values()
                 if e.grade_id in present or (_stem(e.notebook) and stem.startswith(_stem(e.notebook)))}
    return [e for e in registry.values() if _stem(e.notebook) in notebooks]


# ---------------------------------------------------------------- the grading notebook

_SETUP = r'''
import sys as _s
_s.path[:0] = {sys_path!r}
del _s
{prelude}
for _stmt in {imports!r}:
    try:
        exec(_stmt)
    except Exception:
        pass
_stmt = None
del _stmt
def _course_nst_grader_make():
    import builtins, importlib, json, math, resource, sys, threading
    import numpy, torch, torch.nn.functional
    import course_nst
    registry = importlib.import_module({registry!r})
    exercise = registry.EXERCISES[{grade_id!r}]
    evaluate = type(exercise).evaluate
    function = {function!r}
    shell = get_ipython()
    # the package's tested versions of the other exercises' functions, as the notebooks import them
    homes = []
    for modname in ("course_nst.costs", "course_nst", "course_nst.receptive_field", "course_nst.patches"):
        try:
            homes.append(importlib.import_module(modname))
        except ImportError:
            pass
    for name in {references!r}:
        for mod in homes:
            if callable(getattr(mod, name, None)):
                shell.user_ns[name] = getattr(mod, name)
                break
    shell.user_ns.pop(function, None)

    def vm_bytes():
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
        return 0
    limit = vm_bytes() + {memory_mb} * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
    fsize = 256 * 2**20
    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))

    # Warm up: run the checker once on a stub, so that what torch patches in itself on first
    # use (torch._dynamo wraps torch.manual_seed, an optimizer wraps its class's step) happens
    # before the snapshot, not while the student's function is being checked.
    def stub(*args, **kwargs):
        raise NotImplementedError()
    evaluate(exercise, stub)

    ours = ("course_nst", registry.__name__.split(".")[0])
    def is_ours(name):
        return any(name == o or name.startswith(o + ".") for o in ours)
    def watched():
        objs = {{}}
        for name, mod in list(sys.modules.items()):
            if mod is not None and is_ours(name):
                objs[name] = mod
                for k, v in list(vars(mod).items()):
                    if isinstance(v, type) and is_ours(getattr(v, "__module__", "") or ""):
                        objs[name + "." + k] = v
        for name, obj in (("torch", torch), ("torch.Tensor", torch.Tensor),
                          ("torch.nn.functional", torch.nn.functional), ("numpy", numpy),
                          ("math", math), ("builtins", builtins), ("the checker", exercise)):
            objs[name] = obj
        return objs
    # ipykernel swaps builtins.input on every execution; IPython keeps _, __, ... up to date
    ignore = {{"_", "__", "___", "__warningregistry__", "input", "raw_input"}}
    snapshot = {{label: (obj, dict(vars(obj))) for label, obj in watched().items()}}
    exercises = dict(registry.EXERCISES)
    threads = threading.active_count()

    def changes():
        found = []
        for label, (obj, before) in snapshot.items():
            now = vars(obj)
            for k, v in before.items():
                if k in ignore:
                    continue
                if k not in now:
                    found.append(f"{{label}}.{{k}} was deleted")
                elif now[k] is not v:
                    found.append(f"{{label}}.{{k}} was replaced")
        if any(registry.EXERCISES.get(k) is not v for k, v in exercises.items()):
            found.append("the exercise registry was changed")
        return found

    state = {{"status": "error", "problems": ["the grader did not evaluate the exercise"]}}

    def run():
        tampered = changes()
        if tampered:
            state.update(status="tampered", problems=tampered[:5])
            return
        fn = shell.user_ns.get(function, None)
        if fn is None:
            state.update(status="missing", problems=[
                f"the cell does not define a function named {{function}} (renamed?)"])
            return
        if not callable(fn):
            state.update(status="missing", problems=[
                f"{{function}} is a {{type(fn).__name__}}, not a function"])
            return
        if is_ours(getattr(fn, "__module__", "") or ""):
            state.update(status="failed", problems=[
                f"{{function}} is the package's implementation (imported), not your own code"])
            return
        try:
            result = evaluate(exercise, fn)
        except KeyboardInterrupt:
            raise
        except BaseException as e:
            state.update(status="failed", problems=[f"your function raised {{type(e).__name__}}: {{e}}"])
            return
        tampered = changes()
        if tampered:
            state.update(status="tampered", problems=tampered[:5])
            return
        status = "passed" if result.passed else ("not implemented" if result.not_implemented else "failed")
        state.update(status=status, problems=[str(p) for p in result.problems])

    def emit(token):
        if sys.gettrace() is not None or sys.getprofile() is not None:
            state.update(status="tampered", problems=["the exercise cell left a trace or profile hook"])
        elif threading.active_count() > threads:
            state.update(status="tampered", problems=["the exercise cell left a thread running"])
        sys.__stdout__.flush()
        print(token, json.dumps({{"status": str(state["status"]),
                                  "problems": [str(p) for p in state["problems"]]}}), flush=True)

    return run, emit

_course_nst_grader_run, _course_nst_grader_emit = _course_nst_grader_make()
del _course_nst_grader_make
'''


def _grading_notebook(student_source: str, exercise: Any, registry: Mapping[str, Any],
                      config: GradeConfig, token: str, imports: Sequence[str] = ()) -> NotebookNode:
    references = sorted({e.function for e in registry.values() if e.function != exercise.function})
    setup = _SETUP.format(
        sys_path=[str(Path(p).resolve()) for p in config.sys_path],
        prelude=STANDARD_IMPORTS,
        imports=list(imports),
        registry=config.registry,
        grade_id=exercise.grade_id,
        function=exercise.function,
        references=references,
        memory_mb=int(config.memory_mb),
    )
    cells = [
        nbformat.v4.new_code_cell(setup),
        nbformat.v4.new_code_cell(student_source),
        nbformat.v4.new_code_cell("_course_nst_grader_run()"),
        nbformat.v4.new_code_cell(f"_course_nst_grader_emit({token!r})"),
    ]
    return nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": {"name": config.kernel_name, "display_name": config.kernel_name}})


def _syntax_problem(source: str) -> str | None:
    try:
        ast.parse(_python(source))
    except SyntaxError as e:
        return f"SyntaxError at line {e.lineno}: {e.msg}"
    return None


#: Top-level packages whose imports, written in the notebook's cells before an exercise, are
#: repeated in the grading kernel (importing them runs only their own, installed code).
IMPORTABLE = frozenset({"course_nst", "torch", "torchvision", "numpy", "math", "random", "collections",
                        "itertools", "functools", "typing", "dataclasses", "matplotlib"})


def _python(source: str) -> str:
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        return TransformerManager().transform_cell(source)
    except Exception:  # noqa: BLE001 - fall back to plain Python
        return source


def notebook_imports(nb: NotebookNode, before: NotebookNode) -> list[str]:
    """The import statements of the code cells above ``before`` that import from :data:`IMPORTABLE`.

    Nothing else from those cells is run: an import of an installed package cannot change
    the grader's checkers, so this is how an exercise may use e.g. ``IMAGENET_MEAN`` that
    the notebook's setup cell imported.
    """
    found: list[str] = []
    for cell in nb.get("cells", []):
        if cell is before:
            break
        if cell.get("cell_type") != "code":
            continue
        try:
            tree = ast.parse(_python(str(cell.get("source", ""))))
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, ast.Import):
                roots = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                roots = [node.module.split(".")[0]]
            else:
                continue
            if roots and all(r in IMPORTABLE for r in roots):
                found.append(ast.unparse(node))
    return found


def _error_output(cell: NotebookNode) -> str | None:
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            return f"{out.get('ename')}: {out.get('evalue')}"
    return None


def _verdict(cell: NotebookNode, token: str) -> dict | None:
    text = "".join(o.get("text", "") for o in cell.get("outputs", [])
                   if o.get("output_type") == "stream" and o.get("name") == "stdout")
    lines = [line[len(token) + 1:] for line in text.splitlines() if line.startswith(token + " ")]
    if len(lines) != 1:
        return None
    try:
        data = json.loads(lines[0])
    except ValueError:
        return None
    if (not isinstance(data, dict) or set(data) != {"status", "problems"}
            or data["status"] not in STATUSES or not isinstance(data["problems"], list)
            or not all(isinstance(p, str) for p in data["problems"])):
        return None
    return data


def _shorten(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def grade_exercise(student_source: str, exercise: Any, registry: Mapping[str, Any],
                   config: GradeConfig = GradeConfig(), imports: Sequence[str] = ()) -> tuple[str, str]:
    """Grade one exercise cell's source; returns ``(status, reason)``. Never raises.

    ``imports``: import statements to run before the student's cell (see :func:`notebook_imports`).
    """
    problem = _syntax_problem(student_source)
    if problem:
        return "syntax error", problem
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    token = secrets.token_hex(16)
    nb = _grading_notebook(student_source, exercise, registry, config, token, imports)
    setup_timeout = max(config.timeout, config.setup_timeout)
    with tempfile.TemporaryDirectory(prefix="course-nst-grade-") as tmp:
        started: list[int] = []
        client = NotebookClient(
            nb,
            on_cell_execute=lambda cell, cell_index: started.append(cell_index),
            shutdown_kernel="immediate",
            timeout=config.timeout,
            timeout_func=lambda cell: setup_timeout if cell is nb.cells[0] else config.timeout,
            allow_errors=True,
            kernel_name=config.kernel_name,
            resources={"metadata": {"path": tmp}},
            record_timing=False,
        )
        with open(Path(tmp) / "kernel.log", "w") as log:
            try:
                client.execute(stderr=log, stdout=log)
            except CellTimeoutError:
                where = "while being checked" if started and started[-1] >= 2 else "while the cell ran"
                return "timed out", f"timed out after {config.timeout:g} s ({where}; an infinite loop?)"
            except DeadKernelError:
                return "crashed", (f"the kernel died (over the memory limit of {config.memory_mb} MB, "
                                   "or a crash in native code)")
            except Exception as e:  # noqa: BLE001 - never crash the grader
                return "error", _shorten(f"the grader could not run this exercise: {type(e).__name__}: {e}")
    setup_error = _error_output(nb.cells[0])
    if setup_error:
        return "error", _shorten(f"grader setup failed (not the student's fault): {setup_error}")
    data = _verdict(nb.cells[3], token)
    if data is None:
        return "error", "the grader could not read a verdict (the exercise cell interfered with the output)"
    status, problems = data["status"], data["problems"]
    cell_error = _error_output(nb.cells[1])
    if status == "passed":
        return status, ""
    if status == "not implemented":
        return status, "not implemented yet"
    if status == "missing" and cell_error:
        return status, _shorten(f"running the cell raised {cell_error}; " + "; ".join(problems))
    return status, _shorten("; ".join(problems) or "the checks failed")


def _read_notebook(path: Path) -> tuple[NotebookNode | None, str | None]:
    try:
        with open(path, encoding="utf-8") as f:
            return nbformat.read(f, as_version=4), None
    except FileNotFoundError:
        return None, "the file does not exist"
    except Exception as e:  # noqa: BLE001 - a broken file is a zero, not a crash
        return None, _shorten(f"not a readable notebook ({type(e).__name__}: {e})", 200)


def grade_notebook(path: str | Path, config: GradeConfig = GradeConfig(),
                   registry: Mapping[str, Any] | None = None,
                   only: Iterable[str] | None = None) -> list[Score]:
    """Grade every exercise of one student notebook; one :class:`Score` per exercise. Never raises
    for a broken notebook (an unknown ``only`` grade_id is an :class:`InputError`)."""
    registry = load_registry(config) if registry is None else registry
    path = Path(path)
    nb, read_error = _read_notebook(path)
    if only is not None:
        only = list(only)
        unknown = [g for g in only if g not in registry]
        if unknown:
            raise InputError(f"unknown exercise {unknown[0]!r}; known: {', '.join(registry)}")
        exercises = [registry[g] for g in only]
    else:
        exercises = expected_exercises(path, nb, registry)
    if not exercises:
        reason = read_error or "no exercise of the course found (no cell has a known grade_id)"
        return [Score(str(path), "-", "-", 0, 0, "error" if read_error else "missing", reason)]
    cells = _cells_by_grade_id(nb) if nb is not None else {}
    scores = []
    for ex in exercises:
        start = time.perf_counter()
        cell = cells.get(ex.grade_id)
        if read_error:
            status, reason = "error", read_error
        elif cell is None:
            status, reason = "missing", f"the cell with grade_id {ex.grade_id} was deleted"
        elif cell.get("cell_type") != "code":
            status, reason = "missing", f"the cell with grade_id {ex.grade_id} is not a code cell any more"
        else:
            source = cell.get("source", "")
            source = "".join(source) if isinstance(source, list) else str(source)
            try:
                status, reason = grade_exercise(source, ex, registry, config, notebook_imports(nb, cell))
            except Exception as e:  # noqa: BLE001 - last line of defence
                status, reason = "error", _shorten(f"internal grader error: {type(e).__name__}: {e}")
        points = float(ex.points)
        scores.append(Score(str(path), ex.grade_id, ex.function, points if status == "passed" else 0.0,
                            points, status, reason, round(time.perf_counter() - start, 2)))
    return scores


def _expand(paths: Iterable[str | Path]) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(q for q in p.rglob("*.ipynb") if ".ipynb_checkpoints" not in q.parts)
        elif p.exists():
            out.append(p)
        else:
            raise InputError(f"{p}: no such notebook or folder")
    if not out:
        raise InputError("no student notebooks to grade")
    return out


def grade_notebooks(paths: Iterable[str | Path], config: GradeConfig = GradeConfig(),
                    registry: Mapping[str, Any] | None = None,
                    only: Iterable[str] | None = None, progress: Any = None) -> list[Score]:
    """Grade several notebooks (folders are searched for ``*.ipynb``)."""
    registry = load_registry(config) if registry is None else registry
    scores: list[Score] = []
    for path in _expand(paths):
        if progress:
            progress(f"grading {path} ...")
        scores += grade_notebook(path, config, registry, only)
    return scores


# ---------------------------------------------------------------- reports


def _fmt(x: float) -> str:
    return f"{x:g}"


def format_report(scores: Sequence[Score]) -> str:
    """A plain-text table: one line per exercise, then one total per notebook."""
    rows = [("notebook", "exercise", "score", "status", "reason")]
    for s in scores:
        rows.append((s.notebook, s.grade_id, f"{_fmt(s.score)}/{_fmt(s.max_score)}", s.status, s.reason))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(r[i].ljust(widths[i]) for i in range(4)) + "  " + r[4] for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths) + "  " + "-" * 6)
    totals: dict[str, list[float]] = {}
    for s in scores:
        t = totals.setdefault(s.notebook, [0.0, 0.0])
        t[0] += s.score
        t[1] += s.max_score
    lines.append("")
    lines += [f"total {nb}: {_fmt(a)}/{_fmt(b)}" for nb, (a, b) in totals.items()]
    return "\n".join(line.rstrip() for line in lines)


_FIELDS = ["notebook", "grade_id", "function", "score", "max_score", "status", "reason", "seconds"]


def write_csv(scores: Sequence[Score], path: str | Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=_FIELDS)
        w.writeheader()
        for s in scores:
            w.writerow(asdict(s))


def write_json(scores: Sequence[Score], path: str | Path) -> None:
    totals: dict[str, dict[str, float]] = {}
    for s in scores:
        t = totals.setdefault(s.notebook, {"score": 0.0, "max_score": 0.0})
        t["score"] += s.score
        t["max_score"] += s.max_score
    Path(path).write_text(json.dumps({"scores": [asdict(s) for s in scores], "totals": totals},
                                     indent=2) + "\n", encoding="utf-8")


# ---------------------------------------------------------------- command line


def add_grade_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``grade`` subcommand to ``course-nst``'s subparsers."""
    p = subparsers.add_parser(
        "grade",
        help="grade student notebooks, one score per exercise",
        description="Run each exercise cell of each student notebook in a fresh kernel next to the "
        "pristine checkers and print one score per exercise.",
    )
    _fill_grade_parser(p)
    return p


def _fill_grade_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("notebooks", nargs="+", metavar="STUDENT_NOTEBOOK",
                   help="student notebooks, or folders to search for *.ipynb")
    p.add_argument("--csv", metavar="FILE", help="also write the scores as CSV")
    p.add_argument("--json", metavar="FILE", help="also write the scores as JSON")
    p.add_argument("--timeout", type=float, default=60.0, metavar="S",
                   help="seconds an exercise cell (and its check) may run (default 60)")
    p.add_argument("--memory-mb", type=int, default=4096, metavar="MB",
                   help="memory an exercise may use beyond torch itself (default 4096)")
    p.add_argument("--exercise", action="append", metavar="GRADE_ID",
                   help="grade only this exercise (repeatable)")
    p.add_argument("--registry", default="course_nst.checks", metavar="MODULE",
                   help="module that defines EXERCISES (default course_nst.checks)")
    p.set_defaults(func=run_grade)


def run_grade(args: argparse.Namespace) -> int:
    """Run ``course-nst grade``; returns the exit code. Bad input raises InputError."""
    if args.timeout <= 0:
        raise InputError(f"--timeout must be positive, got {args.timeout:g}")
    if args.memory_mb <= 0:
        raise InputError(f"--memory-mb must be positive, got {args.memory_mb}")
    config = GradeConfig(registry=args.registry, timeout=args.timeout, memory_mb=args.memory_mb)
    registry = load_registry(config)
    paths = _expand(args.notebooks)
    scores = grade_notebooks(paths, config, registry, args.exercise,
                             progress=lambda m: print(m, file=sys.stderr, flush=True))
    print(format_report(scores))
    if args.csv:
        write_csv(scores, args.csv)
    if args.json:
        write_json(scores, args.json)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m course_nst.grading`` is ``course-nst grade``."""
    from .cli import main as cli_main

    return cli_main(["grade", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
