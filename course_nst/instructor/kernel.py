"""The untrusted side of grading: runs one student exercise cell and calls its function.

Started by the grader as ``python -m course_nst.instructor.kernel`` inside the sandbox
(see :mod:`course_nst.instructor.sandbox`). It talks to the grader over its standard input
and output, which it moves to private file descriptors before any student code runs; the
student's prints go to a log file in the scratch directory.

What it does, and nothing more:

1. ``setup``: runs the standard imports and the notebook's allowed imports, puts the
   package's tested versions of the *other* exercises' functions in the namespace, sets
   hard memory and file-size limits (soft = hard, so they cannot be raised), replaces the
   package's reference implementation of *this* exercise by a tripwire and traces calls
   into the package's source files, says ``started``, then runs the student's cell and
   says whether it defined the function.
2. ``call``: calls the function on the (pickled) arguments the grader sends and returns its
   result as plain values (:func:`course_nst.instructor.protocol.encode`), the arguments'
   state after the call (a step function changes its tensor in place), and whether the
   reference implementation was reached.
3. ``backward``: back-propagates a gradient through a tensor returned earlier.

For a prediction question the ``setup`` request names a ``variable`` instead of a function:
the kernel runs the answer cell the same way and replies with that variable's value, a plain
number or only the name of its type (:func:`course_nst.instructor.protocol.encode_number`).

It never computes a verdict: the grader's checker does, from these outputs, in the grading
process. Whatever the student's code changes here can only change what their function
returns, which the checker then judges.
"""

from __future__ import annotations

import io
import os
import pickle
import resource
import sys
import threading
import traceback
import types
import warnings
from collections.abc import Callable
from typing import Any

__all__ = ["Kernel", "main"]

CELL_FILE = "<exercise cell>"
PACKAGE = "course_nst"


def _vm_bytes() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def set_hard_limit(which: int, value: int) -> None:
    """Soft and hard limit both ``value`` (never above the current hard limit)."""
    _, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(which, (value, value))


def flatten_tensors(value: Any, out: list | None = None, depth: int = 0) -> list:
    """The tensors of ``value`` that require grad, in a fixed order (the grader walks the same way)."""
    import torch

    out = [] if out is None else out
    if depth > 8:
        return out
    if isinstance(value, torch.Tensor):
        if value.requires_grad:
            out.append(value)
    elif isinstance(value, (list, tuple)):
        for v in value:
            flatten_tensors(v, out, depth + 1)
    elif isinstance(value, dict):
        for v in value.values():
            flatten_tensors(v, out, depth + 1)
    return out


def all_tensors(value: Any, out: list | None = None, depth: int = 0) -> list:
    """Every tensor of ``value`` (lists, tuples, dicts), in a fixed order."""
    import torch

    out = [] if out is None else out
    if depth > 8:
        return out
    if isinstance(value, torch.Tensor):
        out.append(value)
    elif isinstance(value, (list, tuple)):
        for v in value:
            all_tensors(v, out, depth + 1)
    elif isinstance(value, dict):
        for v in value.values():
            all_tensors(v, out, depth + 1)
    return out


SIMPLE = (bool, int, float, str)


def rebuild_object(cls: type, state: dict) -> Any:
    """Unpickle an object from its class and ``__dict__`` (for optimizers, whose own pickling drops
    the attributes a checker adds, such as a call counter)."""
    obj: Any = object.__new__(cls)
    obj.__dict__.update(state)
    return obj


def object_state(obj: Any) -> dict[str, Any]:
    """The plain attributes (numbers, strings, lists of them) of an argument object."""
    found = {}
    for key, value in list(getattr(obj, "__dict__", {}).items()):
        if isinstance(value, SIMPLE) or (isinstance(value, list) and all(isinstance(v, SIMPLE) for v in value)):
            found[key] = value
    return found


class Tripwires:
    """Notices when student code reaches the package's reference implementation of ``function``.

    Two ways: the package's function objects of that name are replaced by wrappers that record
    the call, and a profile hook records any call to a code object of that name defined in the
    package's source files (also after a ``reload`` or an ``exec`` of the file).
    """

    def __init__(self, function: str, package_dir: str):
        self.function = function
        self.package_dir = package_dir.rstrip(os.sep) + os.sep
        self.hits: list[str] = []
        self.wrappers: set[int] = set()

    def install(self) -> None:
        for name, module in list(sys.modules.items()):
            if module is None or not (name == PACKAGE or name.startswith(PACKAGE + ".")):
                continue
            if name.startswith(PACKAGE + ".instructor") or name.startswith(PACKAGE + ".checks"):
                continue
            original = getattr(module, self.function, None)
            if isinstance(original, types.FunctionType) and id(original) not in self.wrappers:
                setattr(module, self.function, self._wrap(original, f"{name}.{self.function}"))
        sys.setprofile(self.profile)
        threading.setprofile(self.profile)

    def _wrap(self, original: Callable, label: str) -> Callable:
        hits = self.hits

        def tripwire(*args: Any, **kwargs: Any) -> Any:
            hits.append(label)
            return original(*args, **kwargs)

        tripwire.__name__ = original.__name__
        tripwire.__qualname__ = original.__qualname__
        tripwire.__doc__ = original.__doc__
        tripwire.__module__ = original.__module__
        tripwire.course_nst_tripwire = True  # type: ignore[attr-defined]
        self.wrappers.add(id(tripwire))
        return tripwire

    def profile(self, frame: Any, event: str, arg: Any) -> None:
        if event == "call":
            code = frame.f_code
            if code.co_name == self.function and code.co_filename.startswith(self.package_dir):
                self.hits.append(f"{code.co_filename}:{code.co_name}")

    def intact(self) -> bool:
        return sys.getprofile() == self.profile

    def is_tripwire(self, fn: Any) -> bool:
        return id(fn) in self.wrappers or getattr(fn, "course_nst_tripwire", False) is True


class Kernel:
    """One exercise: the namespace, the function, the tensors kept for backward requests."""

    def __init__(self, inbox: io.BufferedReader, outbox: io.BufferedWriter):
        self.inbox, self.outbox = inbox, outbox
        self.namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": __builtins__}
        self.function = ""
        self.tripwires: Tripwires | None = None
        self.kept: dict[int, tuple[Any, list]] = {}

    # -------------------------------------------------------------- messages

    def send(self, header: dict, blobs: list[bytes] | None = None) -> None:
        from .protocol import write_frame

        write_frame(self.outbox, header, blobs)

    def serve(self) -> None:
        from .protocol import read_frame

        while True:
            try:
                header, blobs = read_frame(self.inbox)
            except EOFError:
                return
            op = header.get("op")
            if op == "setup":
                self.send(self.setup(header))
            elif op == "call":
                self.send(*self.call(blobs[0]))
            elif op == "backward":
                reply, data = self.backward(header, blobs)
                self.send(self.watch(reply), data)
            else:
                return

    def watch(self, reply: dict) -> dict:
        """Add what the tripwires saw to a reply."""
        if self.tripwires is not None:
            reply["intact"] = self.tripwires.intact()
            reply["reference_calls"] = sorted(set(self.tripwires.hits))
        return reply

    # -------------------------------------------------------------- setup

    def setup(self, request: dict) -> dict:
        sys.path[:0] = list(request.get("sys_path", []))
        ns = self.namespace
        exec(request["standard_imports"], ns)
        import contextlib
        import importlib

        for statement in request.get("imports", []):
            with contextlib.suppress(Exception):  # a failing notebook import is the cell's problem
                exec(statement, ns)

        self.function = str(request.get("function") or "")
        variable = request.get("variable")
        homes = []
        for name in ("course_nst.costs", "course_nst", "course_nst.receptive_field", "course_nst.patches"):
            with contextlib.suppress(ImportError):
                homes.append(importlib.import_module(name))
        for name in request.get("references", []):
            for module in homes:
                if callable(getattr(module, name, None)):
                    ns[name] = getattr(module, name)
                    break
        ns.pop(self.function, None)
        if isinstance(variable, str):
            ns.pop(variable, None)
        import course_nst

        package_dir = os.path.dirname(os.path.abspath(course_nst.__file__))
        set_hard_limit(resource.RLIMIT_AS, _vm_bytes() + int(request["memory_mb"]) * 2**20)
        set_hard_limit(resource.RLIMIT_FSIZE, int(request.get("fsize_mb", 256)) * 2**20)
        if not isinstance(variable, str):
            self.tripwires = Tripwires(self.function, package_dir)
            self.tripwires.install()
        self.send(self.watch({"op": "started"}))  # from here on the cell runs, under the grader's timeout
        reply: dict[str, Any] = {"op": "ready", "cell_error": None}
        import linecache

        source = request["source"]
        linecache.cache[CELL_FILE] = (len(source), None, source.splitlines(True), CELL_FILE)  # lines in tracebacks
        try:
            exec(compile(source, CELL_FILE, "exec"), ns)
        except BaseException as e:
            reply["cell_error"] = self.describe(e)
        if isinstance(variable, str):
            return self.prediction(reply, variable)
        assert self.tripwires is not None
        fn = ns.get(self.function)
        if fn is None:
            reply["kind"] = "missing"
        elif not callable(fn):
            reply.update(kind="not callable", type=type(fn).__name__)
        elif self.tripwires.is_tripwire(fn) or str(getattr(fn, "__module__", "") or "").startswith(PACKAGE):
            reply["kind"] = "package"
        else:
            reply["kind"] = "function"
        return self.watch(reply)

    def prediction(self, reply: dict, variable: str) -> dict:
        """The answer cell has run: its variable's value as a plain number, or its type's name."""
        from .protocol import encode_number

        if variable not in self.namespace:
            reply["kind"] = "missing"
        else:
            reply.update(kind="value", value=encode_number(self.namespace[variable]))
        return reply

    @staticmethod
    def describe(e: BaseException) -> dict:
        frames = [f for f in traceback.extract_tb(e.__traceback__) if f.filename == CELL_FILE]
        where = frames[-1] if frames else None
        return {
            "type": type(e).__name__,
            "message": str(e)[:500],
            "line": where.lineno if where else None,
            "code": (where.line or "")[:200] if where else "",
        }

    # -------------------------------------------------------------- calls

    def call(self, payload: bytes) -> tuple[dict, list[bytes]]:
        from .protocol import encode

        assert self.tripwires is not None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            args, grads = pickle.loads(payload)  # sent by the grader: trusted
        for t, g in zip(all_tensors(args), grads, strict=True):
            if g is not None and t.is_leaf:
                t.grad = g
        inputs = flatten_tensors(args)
        blobs: list[bytes] = []
        reply: dict[str, Any] = {"op": "result"}
        fn = self.namespace.get(self.function)
        try:
            value = fn(*args)  # type: ignore[misc]
        except BaseException as e:
            reply["raised"] = self.describe(e)
        else:

            def keep(t: Any) -> int:
                handle = len(self.kept) + 1
                self.kept[handle] = (t, inputs)
                return handle

            reply["value"] = encode(value, blobs, keep)
        reply["tensors"] = [encode(t, blobs) for t in all_tensors(args)]
        reply["grads"] = [None if t.grad is None or not t.is_leaf else encode(t.grad, blobs) for t in all_tensors(args)]
        reply["objects"] = {
            str(i): object_state(a)
            for i, a in enumerate(args)
            if not isinstance(a, (list, tuple, dict)) and hasattr(a, "__dict__")
        }
        return self.watch(reply), blobs

    def backward(self, request: dict, blobs: list[bytes]) -> tuple[dict, list[bytes]]:
        import torch

        from .protocol import decode, encode

        kept = self.kept.get(int(request.get("handle", -1)))
        if kept is None:
            return {"op": "grads", "error": "unknown tensor"}, []
        out, inputs = kept
        grad = decode(request["grad"], blobs).to(out.dtype)
        try:
            grads = torch.autograd.grad(out, inputs, grad_outputs=grad, allow_unused=True, retain_graph=True)
        except BaseException as e:
            return {"op": "grads", "error": f"{type(e).__name__}: {e}"[:500]}, []
        result: list[bytes] = []
        return {"op": "grads", "grads": [None if g is None else encode(g, result) for g in grads]}, result


def main() -> None:
    """Move the protocol to private descriptors, send the student's output to a log, serve."""
    inbox = os.fdopen(os.dup(0), "rb")
    outbox = os.fdopen(os.dup(1), "wb")
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    log = os.open("kernel.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)
    Kernel(inbox, outbox).serve()
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
