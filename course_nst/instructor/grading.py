"""Grading student notebooks: one score per exercise, the verdict computed by the grader.

``course-nst grade STUDENT_NOTEBOOK...`` gives each exercise of each notebook a score and a
reason, and never crashes on a broken notebook: a syntax error, an infinite loop, a deleted
or renamed function, a kernel killed for memory, a cell that ends its process, an unreadable
file all become a score of zero with a reason.

How a score is computed (and why a student's notebook cannot forge it)
---------------------------------------------------------------------
The student's notebook is never executed as a whole, and nothing it printed or stored is
read. For every exercise the grader:

1. finds the exercise cell by its nbgrader ``grade_id`` and checks its syntax here;
2. verifies the checker files against the installed ``RECORD`` or the committed version and
   against the hashes recorded when the grader imported them (:mod:`.verify`); a checker that
   differs is reported and not used;
3. starts a fresh kernel process, :mod:`course_nst.instructor.kernel`, in an operating-system
   sandbox (:mod:`.sandbox`: bubblewrap on Linux) and sends it the cell, the allowed imports
   of the cells above it and the names of the package's tested versions of the *other*
   exercises' functions;
4. runs the exercise's checker **here, in the grading process**, on a stand-in for the
   student's function: each call sends the arguments to the kernel, which calls the
   student's function and sends back only plain values (numbers, strings, lists, dicts and
   tensor data, never pickles), the state of the arguments after the call, and whether the
   package's reference implementation was reached. A returned tensor that needs a gradient
   is connected to the checker's inputs through an autograd function whose backward asks
   the kernel to back-propagate.

The checker, the reference costs and the scoring never run in the student's process, so
nothing the student's code prints, patches or redefines can change a verdict: it can only
change what its function returns, which the checker judges. A call into the package's own
implementation of the exercise (imported, wrapped or re-executed from its source file) is
detected by tripwires and a profile hook in the kernel and scores zero; the package's
source is visible to students (it is installed), so a student could still copy it: the
grader detects calls, not copies.

Exercise cells must be self-contained apart from :data:`STANDARD_IMPORTS`, the import
statements of the cells above the exercise that import from the packages in
:data:`IMPORTABLE`, and the package's tested versions of the other exercises' functions.

Prediction questions
--------------------
A prediction's answer cell assigns a number to a variable (``predict_content_growth = 4``). The
grader runs that cell in the same sandboxed kernel (after the same imports); the kernel sends back
only the variable's value, as a plain ``int`` or ``float``, or else only its type's name
(:func:`~course_nst.instructor.protocol.encode_number`). The number is rebuilt here from JSON
and judged here by the registry's :class:`~course_nst.checks.Prediction`, so a ``float`` subclass
whose comparisons lie, a string, a ``bool`` or a NumPy scalar is a failed answer, and nothing the
cell patches (``check_prediction``, ``PREDICTIONS``, the kernel) changes the verdict: at most it
changes which number arrives, as writing that number would.

The registry is a module with ``EXERCISES: dict[str, Exercise]`` and, optionally,
``PREDICTIONS: dict[str, Prediction]``, keyed by grade_id (see :mod:`course_nst.checks._common`);
:class:`GradeConfig` names it. :func:`load_registry` merges the two: what this module calls an
"exercise" is either.
"""

from __future__ import annotations

import argparse
import ast
import builtins
import contextlib
import csv
import importlib
import io
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import nbformat
import torch
from nbformat import NotebookNode

from ..checks._common import Prediction
from ..errors import InputError
from . import verify
from .kernel import all_tensors, flatten_tensors, rebuild_object
from .protocol import ProtocolError, decode, decode_number, encode, read_frame_fd, write_frame
from .sandbox import Sandbox, find_sandbox, start_kernel, stop_kernel

__all__ = [
    "IMPORTABLE",
    "STANDARD_IMPORTS",
    "STATUSES",
    "Checkers",
    "GradeConfig",
    "KernelGone",
    "Score",
    "add_grade_parser",
    "check_writable",
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

#: Top-level packages whose imports, written in the notebook's cells above an exercise, are repeated in
#: the grading kernel (importing them runs only their own, installed code). The one list: the notebook
#: tests import it from here.
IMPORTABLE = frozenset(
    {
        "course_nst",
        "torch",
        "torchvision",
        "numpy",
        "math",
        "random",
        "collections",
        "itertools",
        "functools",
        "typing",
        "dataclasses",
        "matplotlib",
        "PIL",
        "scipy",
    }
)

STATUSES = (
    "passed",
    "failed",
    "not implemented",
    "not answered",
    "missing",
    "syntax error",
    "timed out",
    "crashed",
    "exited",
    "tampered",
    "error",
)


@dataclass(frozen=True)
class GradeConfig:
    """How to grade.

    Attributes:
        registry: module that defines ``EXERCISES`` (grade_id -> Exercise) and, optionally,
            ``PREDICTIONS`` (grade_id -> Prediction).
        timeout: seconds each call of the student's function (and the cell itself) may run;
            the kernel's start-up (importing torch) gets at least ``setup_timeout``.
        memory_mb: memory the kernel may use on top of what it holds after importing torch.
        sys_path: folders to put in front of ``sys.path`` to import the registry from.
        sandbox: ``"auto"`` (bubblewrap where it works), ``"bubblewrap"`` (required) or ``"none"``.
        hide: more files or folders the sandbox hides (answer keys, solution folders); the
            course's ``notebooks/`` folder and the graded notebook's folder are always hidden.
        cpu_seconds: hard CPU-time limit of one kernel (``None``: ``setup_timeout + 10 * timeout``).
    """

    registry: str = "course_nst.checks"
    timeout: float = 60.0
    memory_mb: int = 4096
    sys_path: tuple[str, ...] = ()
    setup_timeout: float = 180.0
    sandbox: str = "auto"
    hide: tuple[str, ...] = ()
    cpu_seconds: int | None = None


@dataclass
class Score:
    """The grade of one exercise (or prediction question) of one notebook; ``function`` is the
    exercise's function, or the prediction's variable."""

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


# ---------------------------------------------------------------- the registry and its verification


@contextlib.contextmanager
def _extra_path(paths: Sequence[str]):
    old = list(sys.path)
    sys.path[:0] = [str(p) for p in paths]
    try:
        yield
    finally:
        sys.path[:] = old


def _registry_module(config: GradeConfig) -> ModuleType:
    with _extra_path(config.sys_path):
        try:
            module = importlib.import_module(config.registry)
        except ImportError as e:
            raise InputError(f"cannot import the exercise registry {config.registry!r}: {e}") from None
    if not isinstance(getattr(module, "EXERCISES", None), Mapping):
        raise InputError(f"{config.registry} has no EXERCISES dictionary")
    return module


def load_registry(config: GradeConfig = GradeConfig()) -> Mapping[str, Any]:
    """Import ``config.registry`` and return its ``EXERCISES`` and ``PREDICTIONS`` in one mapping
    (grade_id -> Exercise or Prediction), exercises first."""
    module = _registry_module(config)
    predictions = getattr(module, "PREDICTIONS", {})
    if not isinstance(predictions, Mapping):
        raise InputError(f"{config.registry}.PREDICTIONS is not a dictionary")
    bad = [g for g, p in predictions.items() if not isinstance(p, Prediction) or p.grade_id != g]
    if bad:
        raise InputError(f"{config.registry}.PREDICTIONS[{bad[0]!r}] is not the Prediction with that grade_id")
    both = sorted(set(module.EXERCISES) & set(predictions))
    if both:
        raise InputError(f"{config.registry}: grade_id {both[0]!r} is both an exercise and a prediction question")
    return {**module.EXERCISES, **predictions}


def _name(item: Any) -> str:
    """The exercise's function, or the prediction's variable."""
    return str(item.variable if isinstance(item, Prediction) else item.function)


@dataclass
class Checkers:
    """The checker files, their hashes when the grader imported them, and a trusted reference."""

    files: list[Path]
    recorded: dict[Path, str]
    source: str
    trusted: dict[Path, str]

    @classmethod
    def of(cls, config: GradeConfig) -> Checkers:
        module = _registry_module(config)
        files = verify.checker_files(module)
        if config.registry.split(".")[0] == "course_nst":
            files = sorted(set(files) | set(verify.checker_files(importlib.import_module("course_nst.checks"))))
        source, trusted = verify.reference(files)
        return cls(files, verify.record(files), source, trusted)

    def problems(self) -> list[str]:
        return verify.problems(self.recorded, self.trusted)

    @property
    def note(self) -> str:
        where = self.source or "the hashes taken when grading started (no installed RECORD or git checkout)"
        return f"checkers: {len(self.files)} file(s) verified against {where}"


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
    """The exercises and prediction questions a notebook should contain.

    Those of every course notebook that the file name starts with (a student may add a suffix:
    ``02_content_cost-alice.ipynb``) or whose grade_ids appear in it, so a deleted exercise cell is
    still graded (as zero).
    """
    stem = Path(path).stem
    present = set(_cells_by_grade_id(nb)) if nb is not None else set()
    notebooks = {
        _stem(e.notebook)
        for e in registry.values()
        if e.grade_id in present or (_stem(e.notebook) and stem.startswith(_stem(e.notebook)))
    }
    return [e for e in registry.values() if _stem(e.notebook) in notebooks]


# ---------------------------------------------------------------- the student's side, seen from here


class KernelGone(BaseException):
    """The kernel stopped answering (timed out, died, exited, sent garbage).

    A ``BaseException``, so that no ``except Exception`` in a checker swallows it.
    """

    def __init__(self, status: str, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


class StudentRaised(Exception):
    """Base of the exceptions re-raised here for an exception of the student's function."""

    remote: dict = {}


def _student_exception(info: dict) -> StudentRaised:
    """An exception named like the student's (a subclass of the builtin one of that name, if any)."""
    name = str(info.get("type", "Exception"))
    name = "".join(ch for ch in name if ch.isalnum() or ch == "_")[:60] or "Exception"
    base = getattr(builtins, name, None)
    bases: tuple[type, ...] = (StudentRaised,)
    if isinstance(base, type) and issubclass(base, Exception) and base is not Exception:
        bases = (base, StudentRaised)
    error = type(name, bases, {})(str(info.get("message", "")))
    error.remote = info
    return error


def _describe_raise(info: dict) -> str:
    where = f" (line {info['line']}: {info.get('code', '')})" if isinstance(info.get("line"), int) else ""
    return f"your function raised {info.get('type')}: {info.get('message')}{where}"


_SIGNALS = {
    int(signal.SIGKILL): "was killed (over the memory limit, or killed from outside)",
    int(signal.SIGXCPU): "used up its CPU-time limit",
    int(signal.SIGSEGV): "crashed in native code (segmentation fault)",
    int(signal.SIGABRT): "aborted (a crash in native code)",
    int(signal.SIGXFSZ): "wrote a file over the size limit",
}


STARTING = "while the kernel started, importing torch and the notebook's imports"


class Kernel:
    """The grader's end of one kernel: requests, replies, the stand-in for the student's function."""

    def __init__(self, proc: subprocess.Popen, config: GradeConfig, sandboxed: bool):
        self.proc, self.config, self.sandboxed = proc, config, sandboxed
        self.reference_calls: list[str] = []
        self.intact = True
        self.phase = STARTING

    def _gone(self) -> KernelGone:
        try:
            rc = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            return KernelGone("crashed", "the kernel stopped answering")
        sig = -rc if rc < 0 else (rc - 128 if self.sandboxed and rc > 128 else None)
        if sig is not None:
            what = _SIGNALS.get(sig, f"was killed by signal {sig}")
            if sig == signal.SIGKILL:
                what = f"was killed (over the memory limit of {self.config.memory_mb} MB?)"
            return KernelGone("crashed", f"the kernel {what} {self.phase}")
        return KernelGone(
            "exited",
            f"the student's code ended the kernel process itself (os._exit or similar, exit status {rc}) {self.phase}",
        )

    def request(
        self, header: dict, blobs: list[bytes] | None = None, timeout: float | None = None
    ) -> tuple[dict, list]:
        try:
            write_frame(self.proc.stdin, header, blobs)  # type: ignore[arg-type]
        except (BrokenPipeError, OSError, ValueError):
            raise self._gone() from None
        return self.receive(timeout)

    def receive(self, timeout: float | None = None) -> tuple[dict, list]:
        """The kernel's next frame, within ``timeout`` seconds (default: the configured timeout)."""
        limit = timeout if timeout is not None else self.config.timeout
        try:
            reply, data = read_frame_fd(self.proc.stdout.fileno(), time.monotonic() + limit)  # type: ignore[union-attr]
        except TimeoutError:
            why = "" if self.phase == STARTING else "; an infinite loop?"
            raise KernelGone("timed out", f"timed out after {limit:g} s ({self.phase}{why})") from None
        except EOFError:
            raise self._gone() from None
        except (ProtocolError, ValueError):
            raise KernelGone(
                "error", "the kernel sent a malformed reply (the exercise cell interfered with the grader's connection)"
            ) from None
        calls = reply.get("reference_calls")
        if isinstance(calls, list):
            self.reference_calls += [str(c)[:200] for c in calls]
        if reply.get("intact") is not True:
            self.intact = False
        return reply, data

    def function(self) -> Any:
        """The stand-in: call it like the student's function."""
        kernel = self

        def student_function(*args: Any) -> Any:
            kernel.phase = "while being checked"
            payload = _dump_arguments(args)
            reply, data = kernel.request({"op": "call"}, [payload])
            if reply.get("op") != "result":
                raise KernelGone("error", "the kernel sent an unexpected reply")
            try:
                kernel._write_back(args, reply, data)
                if "raised" in reply:
                    raise _student_exception(reply["raised"] if isinstance(reply["raised"], dict) else {})
                inputs = flatten_tensors(args)
                return decode(reply.get("value"), data, lambda t, d: kernel._attach(t, d, inputs))
            except ProtocolError:
                raise KernelGone("error", "the kernel sent a malformed reply") from None

        return student_function

    def _write_back(self, args: tuple, reply: dict, data: list) -> None:
        """Copy the arguments' state after the call (tensors changed in place, counters) onto ours."""
        tensors = all_tensors(args)
        described = reply.get("tensors", [])
        if not isinstance(described, list) or len(described) != len(tensors):
            raise ProtocolError("argument tensors")
        for mine, desc in zip(tensors, described, strict=True):
            theirs = decode(desc, data)
            if not isinstance(theirs, torch.Tensor) or theirs.shape != mine.shape or theirs.dtype != mine.dtype:
                raise ProtocolError("argument tensor changed type")
            with torch.no_grad():
                if not torch.equal(theirs, mine):
                    mine.copy_(theirs)
            if mine.is_leaf and bool(desc.get("requires_grad")) != mine.requires_grad:
                mine.requires_grad_(bool(desc.get("requires_grad")))
        grads = reply.get("grads", [])
        if not isinstance(grads, list) or len(grads) != len(tensors):
            raise ProtocolError("argument gradients")
        for mine, desc in zip(tensors, grads, strict=True):
            if not mine.is_leaf:
                continue
            grad = None if desc is None else decode(desc, data)
            if grad is not None and (not isinstance(grad, torch.Tensor) or grad.shape != mine.shape):
                raise ProtocolError("argument gradient")
            mine.grad = None if grad is None else grad.to(mine.dtype)
        objects = reply.get("objects", {})
        if not isinstance(objects, dict):
            raise ProtocolError("argument objects")
        for index, state in objects.items():
            if not (isinstance(index, str) and index.isdigit() and int(index) < len(args) and isinstance(state, dict)):
                raise ProtocolError("argument objects")
            target = args[int(index)]
            for key, value in state.items():
                current = getattr(target, key, None) if isinstance(key, str) else None
                if current is None or isinstance(current, torch.Tensor):
                    continue
                if type(value) is type(current) or (isinstance(current, list) and isinstance(value, list)):
                    if isinstance(current, list):
                        current[:] = value
                    else:
                        setattr(target, key, value)

    def _attach(self, value: torch.Tensor, desc: dict, inputs: list[torch.Tensor]) -> torch.Tensor:
        handle = desc.get("handle")
        if not desc.get("requires_grad") or not isinstance(handle, int):
            return value
        if not inputs or not (value.is_floating_point() or value.is_complex()):
            return value.requires_grad_(value.is_floating_point() or value.is_complex())
        return _RemoteBackward.apply(self, handle, value, *inputs)

    def backward(self, handle: int, grad: torch.Tensor, inputs: Sequence[torch.Tensor]) -> list[torch.Tensor | None]:
        blobs: list[bytes] = []
        reply, data = self.request({"op": "backward", "handle": handle, "grad": encode(grad, blobs)}, blobs)
        if reply.get("error") or not isinstance(reply.get("grads"), list) or len(reply["grads"]) != len(inputs):
            raise RuntimeError(str(reply.get("error") or "the kernel could not back-propagate")[:300])
        grads: list[torch.Tensor | None] = []
        for desc, mine in zip(reply["grads"], inputs, strict=True):
            g = None if desc is None else decode(desc, data)
            if g is not None and (not isinstance(g, torch.Tensor) or g.shape != mine.shape):
                raise RuntimeError("the kernel sent a gradient of the wrong shape")
            grads.append(None if g is None else g.to(mine.dtype))
        return grads


class _ArgumentPickler(pickle.Pickler):
    """Pickles an optimizer with its whole ``__dict__`` (its own pickling keeps only its state)."""

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, torch.optim.Optimizer):
            return rebuild_object, (type(obj), dict(vars(obj)))
        return NotImplemented


def _dump_arguments(args: tuple) -> bytes:
    """The arguments and the ``.grad`` of their tensors (pickling a tensor drops its gradient)."""
    buffer = io.BytesIO()
    grads = [t.grad for t in all_tensors(args)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a checker's tensor hooks stay here; the kernel does not need them
        _ArgumentPickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump((args, grads))
    return buffer.getvalue()


class _RemoteBackward(torch.autograd.Function):
    """The student's result as a function of the checker's inputs; backward asks the kernel."""

    @staticmethod
    def forward(ctx: Any, kernel: Kernel, handle: int, value: torch.Tensor, *inputs: torch.Tensor) -> torch.Tensor:
        ctx.kernel, ctx.handle, ctx.inputs = kernel, handle, inputs
        return value.clone()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> Any:
        grads = ctx.kernel.backward(ctx.handle, grad.detach(), ctx.inputs)
        return (None, None, None, *grads)


def _hidden_paths(config: GradeConfig, notebook: str | Path | None) -> list[str]:
    import course_nst

    hide = list(config.hide)
    course_notebooks = Path(course_nst.__file__).resolve().parents[1] / "notebooks"
    if course_notebooks.is_dir():
        hide.append(str(course_notebooks))
    if notebook is not None:
        hide.append(str(Path(notebook).resolve().parent))
    return hide


def _run_in_kernel(
    source: str,
    exercise: Any,
    registry: Mapping[str, Any],
    config: GradeConfig,
    imports: Sequence[str],
    sandbox: Sandbox,
    hide: Sequence[str],
) -> tuple[str, str]:
    prediction = isinstance(exercise, Prediction)
    references = sorted(
        {e.function for e in registry.values() if not isinstance(e, Prediction) and e.function != _name(exercise)}
    )
    cpu = config.cpu_seconds or int(max(config.timeout, config.setup_timeout) + 10 * config.timeout)
    scratch = Path(tempfile.mkdtemp(prefix="course-nst-grade-"))
    os.chmod(scratch, 0o700)
    sys_path = [str(Path(p).resolve()) for p in config.sys_path]
    proc = start_kernel(sandbox, scratch, cpu, hide, sys_path)
    kernel = Kernel(proc, config, sandbox.kind == "bubblewrap")
    try:
        setup = {
            "op": "setup",
            "sys_path": sys_path,
            "standard_imports": STANDARD_IMPORTS,
            "imports": list(imports),
            "references": references,
            ("variable" if prediction else "function"): _name(exercise),
            "source": _python(source),
            "memory_mb": int(config.memory_mb),
        }
        started, _ = kernel.request(setup, timeout=max(config.timeout, config.setup_timeout))
        kernel.phase = "while the cell ran"
        ready, _ = kernel.receive()  # the cell itself gets the configured timeout
        if started.get("op") != "started" or ready.get("op") != "ready":
            return "error", "the kernel sent an unexpected reply"
        return _judge_prediction(ready, exercise) if prediction else _judge(kernel, ready, exercise)
    except KernelGone as gone:
        return gone.status, gone.reason
    finally:
        stop_kernel(proc)
        shutil.rmtree(scratch, ignore_errors=True)


def _judge(kernel: Kernel, ready: dict, exercise: Any) -> tuple[str, str]:
    function = exercise.function
    cell_error = ready.get("cell_error") if isinstance(ready.get("cell_error"), dict) else None
    kind = ready.get("kind")
    if kind in ("missing", "not callable"):
        why = (
            f"the cell does not define a function named {function} (renamed?)"
            if kind == "missing"
            else f"{function} is a {ready.get('type')}, not a function"
        )
        if cell_error:
            why = f"running the cell raised {cell_error.get('type')}: {cell_error.get('message')}; {why}"
        return "missing", _shorten(why)
    if kind == "package":
        return "failed", f"{function} is the package's implementation (imported), not your own code"
    if kind != "function":
        return "error", "the kernel sent an unexpected reply"
    try:
        problems = list(exercise.diagnose(kernel.function()))
    except NotImplementedError as e:
        info = getattr(e, "remote", None)
        if info is None:
            return "error", _shorten(f"the checker raised NotImplementedError: {e}")
        problems, not_implemented = [], True
    except StudentRaised as e:
        problems, not_implemented = [_describe_raise(e.remote)], False
    except Exception as e:
        return "error", _shorten(
            f"the checker raised {type(e).__name__}: {e} (a grader problem, or a result it cannot handle)"
        )
    else:
        not_implemented = False
    if not kernel.intact:
        return "tampered", "the exercise cell removed the grader's call tracing in the kernel"
    if kernel.reference_calls:
        return "failed", _shorten(
            f"{function} calls the package's reference implementation "
            f"({kernel.reference_calls[0]}); write your own code"
        )
    if not_implemented:
        return "not implemented", "not implemented yet"
    if problems:
        return "failed", _shorten("; ".join(str(p) for p in problems))
    return "passed", ""


def _judge_prediction(ready: dict, prediction: Prediction) -> tuple[str, str]:
    """The verdict on the number the kernel sent, by the registry's Prediction, here."""
    variable = prediction.variable
    cell_error = ready.get("cell_error") if isinstance(ready.get("cell_error"), dict) else None
    kind = ready.get("kind")
    if kind == "missing":
        why = f"the cell does not assign {variable} (renamed or deleted?)"
        if cell_error:
            why = f"running the cell raised {cell_error.get('type')}: {cell_error.get('message')}; {why}"
        return "missing", _shorten(why)
    if kind != "value":
        return "error", "the kernel sent an unexpected reply"
    try:
        value = decode_number(ready.get("value"))
    except ProtocolError:
        return "error", "the kernel sent a malformed reply (the answer cell interfered with the grader's connection)"
    result = prediction.evaluate(value)
    if result.passed:
        return "passed", ""
    reason = _shorten("; ".join(result.problems))
    return ("not answered" if value is None else "failed"), reason


def _syntax_problem(source: str) -> str | None:
    try:
        ast.parse(_python(source))
    except SyntaxError as e:
        return f"SyntaxError at line {e.lineno}: {e.msg}"
    return None


def _python(source: str) -> str:
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        return TransformerManager().transform_cell(source)
    except Exception:
        return source


def notebook_imports(nb: NotebookNode, before: NotebookNode) -> list[str]:
    """The import statements of the code cells above ``before`` that import from :data:`IMPORTABLE`.

    Nothing else from those cells is run: an import of an installed package cannot change the
    grader's checkers, so this is how an exercise may use e.g. ``IMAGENET_MEAN`` that the notebook's
    setup cell imported.
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


def _shorten(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def grade_exercise(
    student_source: str,
    exercise: Any,
    registry: Mapping[str, Any],
    config: GradeConfig = GradeConfig(),
    imports: Sequence[str] = (),
    *,
    notebook: str | Path | None = None,
    sandbox: Sandbox | None = None,
    checkers: Checkers | None = None,
) -> tuple[str, str]:
    """Grade one exercise cell's (or prediction answer cell's) source; returns ``(status, reason)``.
    Never raises for student code.

    ``imports``: import statements to run before the student's cell (see :func:`notebook_imports`);
    ``notebook``: the file the cell comes from (its folder is hidden from the kernel).
    """
    problem = _syntax_problem(student_source)
    if problem:
        return "syntax error", problem
    checkers = checkers or Checkers.of(config)
    tampered = checkers.problems()
    if tampered:
        return "error", _shorten("the checker is not trusted: " + "; ".join(tampered))
    sandbox = sandbox or find_sandbox(config.sandbox)
    try:
        result = _run_in_kernel(
            student_source, exercise, registry, config, imports, sandbox, _hidden_paths(config, notebook)
        )
    except Exception as e:
        return "error", _shorten(f"the grader could not run this exercise: {type(e).__name__}: {e}")
    tampered = checkers.problems()
    if tampered:
        return "error", _shorten("the checker is not trusted: " + "; ".join(tampered))
    return result


def _read_notebook(path: Path) -> tuple[NotebookNode | None, str | None]:
    try:
        with open(path, encoding="utf-8") as f:
            return nbformat.read(f, as_version=4), None
    except FileNotFoundError:
        return None, "the file does not exist"
    except Exception as e:
        return None, _shorten(f"not a readable notebook ({type(e).__name__}: {e})", 200)


def grade_notebook(
    path: str | Path,
    config: GradeConfig = GradeConfig(),
    registry: Mapping[str, Any] | None = None,
    only: Iterable[str] | None = None,
    *,
    sandbox: Sandbox | None = None,
    checkers: Checkers | None = None,
) -> list[Score]:
    """Grade every exercise and prediction question of one student notebook; one :class:`Score` each.
    Never raises for a broken notebook (an unknown ``only`` grade_id is an :class:`InputError`)."""
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
                status, reason = grade_exercise(
                    source,
                    ex,
                    registry,
                    config,
                    notebook_imports(nb, cell) if nb is not None else [],
                    notebook=path,
                    sandbox=sandbox,
                    checkers=checkers,
                )
            except Exception as e:
                status, reason = "error", _shorten(f"internal grader error: {type(e).__name__}: {e}")
        points = float(ex.points)
        scores.append(
            Score(
                str(path),
                ex.grade_id,
                _name(ex),
                points if status == "passed" else 0.0,
                points,
                status,
                reason,
                round(time.perf_counter() - start, 2),
            )
        )
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


def grade_notebooks(
    paths: Iterable[str | Path],
    config: GradeConfig = GradeConfig(),
    registry: Mapping[str, Any] | None = None,
    only: Iterable[str] | None = None,
    progress: Any = None,
    *,
    sandbox: Sandbox | None = None,
    checkers: Checkers | None = None,
) -> list[Score]:
    """Grade several notebooks (folders are searched for ``*.ipynb``)."""
    registry = load_registry(config) if registry is None else registry
    sandbox = sandbox or find_sandbox(config.sandbox)
    checkers = checkers or Checkers.of(config)
    scores: list[Score] = []
    for path in _expand(paths):
        if progress:
            progress(f"grading {path} ...")
        scores += grade_notebook(path, config, registry, only, sandbox=sandbox, checkers=checkers)
    return scores


# ---------------------------------------------------------------- reports


def _fmt(x: float) -> str:
    return f"{x:g}"


def format_report(scores: Sequence[Score], notes: Sequence[str] = ()) -> str:
    """A plain-text table: one line per exercise, one total per notebook, then the ``notes``
    (which sandbox was used, how the checkers were verified)."""
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
    if notes:
        lines += ["", *notes]
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
    Path(path).write_text(
        json.dumps({"scores": [asdict(s) for s in scores], "totals": totals}, indent=2) + "\n", encoding="utf-8"
    )


def check_writable(path: str | Path, option: str) -> None:
    """Refuse, before grading starts, a report file that cannot be written."""
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    if p.is_dir():
        raise InputError(f"{option} {p} is a directory; give a file name")
    if not parent.exists():
        raise InputError(f"{option} {p}: the folder {parent} does not exist")
    if not parent.is_dir():
        raise InputError(f"{option} {p}: {parent} is not a folder")
    if (p.exists() and not os.access(p, os.W_OK)) or not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"{option} {p}: permission denied; choose a writable place")


# ---------------------------------------------------------------- command line


def add_grade_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``grade`` subcommand to ``course-nst``'s subparsers."""
    p = subparsers.add_parser(
        "grade",
        help="grade student notebooks, one score per exercise and prediction question",
        description="Run each exercise cell (and prediction answer cell) of each student notebook in a "
        "fresh sandboxed kernel and judge its function (or number) with the verified checkers in this "
        "process; print one score per exercise and prediction question.",
    )
    fill_grade_parser(p)
    return p


def fill_grade_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "notebooks", nargs="+", metavar="STUDENT_NOTEBOOK", help="student notebooks, or folders to search for *.ipynb"
    )
    p.add_argument("--csv", metavar="FILE", help="also write the scores as CSV")
    p.add_argument("--json", metavar="FILE", help="also write the scores as JSON")
    p.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        metavar="S",
        help="seconds an exercise cell (and each call of its function) may run (default 60)",
    )
    p.add_argument(
        "--memory-mb",
        type=int,
        default=4096,
        metavar="MB",
        help="memory an exercise may use beyond torch itself (default 4096)",
    )
    p.add_argument(
        "--exercise",
        action="append",
        metavar="GRADE_ID",
        help="grade only this exercise or prediction question (repeatable)",
    )
    p.add_argument(
        "--registry",
        default="course_nst.checks",
        metavar="MODULE",
        help="module that defines EXERCISES and PREDICTIONS (default course_nst.checks)",
    )
    p.add_argument(
        "--sandbox",
        default="auto",
        choices=["auto", "bubblewrap", "none"],
        help="auto (default: bubblewrap where it works), bubblewrap (required) or none",
    )
    p.add_argument(
        "--hide",
        action="append",
        default=[],
        metavar="PATH",
        help="a file or folder student code must not see (answer keys; repeatable)",
    )
    p.set_defaults(func=run_grade)


def run_grade(args: argparse.Namespace) -> int:
    """Run ``course-nst grade``; returns the exit code. Bad input raises InputError."""
    if not args.timeout > 0 or args.timeout == float("inf"):
        raise InputError(f"--timeout must be a positive number of seconds, got {args.timeout:g}")
    if args.memory_mb <= 0:
        raise InputError(f"--memory-mb must be positive, got {args.memory_mb}")
    for option in ("csv", "json"):
        if getattr(args, option, None):
            check_writable(getattr(args, option), f"--{option}")
    config = GradeConfig(
        registry=args.registry,
        timeout=args.timeout,
        memory_mb=args.memory_mb,
        sandbox=getattr(args, "sandbox", "auto"),
        hide=tuple(getattr(args, "hide", []) or []),
    )
    registry = load_registry(config)
    paths = _expand(args.notebooks)
    sandbox = find_sandbox(config.sandbox)
    checkers = Checkers.of(config)
    scores = grade_notebooks(
        paths,
        config,
        registry,
        args.exercise,
        sandbox=sandbox,
        checkers=checkers,
        progress=lambda m: print(m, file=sys.stderr, flush=True),
    )
    print(format_report(scores, [sandbox.note, checkers.note]))
    try:
        if args.csv:
            write_csv(scores, args.csv)
        if args.json:
            write_json(scores, args.json)
    except OSError as e:
        raise InputError(f"cannot write the report: {e.strerror}: {e.filename}") from None
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m course_nst.instructor.grading`` is ``course-nst grade``."""
    from ..cli import main as cli_main

    return cli_main(["grade", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
