"""Where student code runs: an operating-system sandbox around the grading kernel.

On Linux the kernel runs under bubblewrap (``bwrap``, the Debian/Ubuntu package
``bubblewrap``):

* the whole file system read-only (``--ro-bind / /``), with a fresh empty ``/tmp``,
  ``/root`` and ``/home`` and the solution notebooks, the answer key and the folders of the
  notebooks being graded hidden behind empty directories; the only writable place is a
  scratch directory that is deleted afterwards;
* no network, and its own process, IPC, UTS and user namespaces (``--unshare-all``), no
  capabilities, a new terminal session (``--new-session``);
* all its processes die with it (``--die-with-parent`` and the PID namespace: when the
  kernel ends, the namespace's other processes are killed, even those started with
  ``start_new_session=True``);
* hard limits (soft = hard, so student code cannot raise them): CPU seconds (set here,
  before ``bwrap`` starts), address space and file size (set by the kernel after importing
  torch, before any student code).

Without bubblewrap (macOS, Windows, a container that forbids user namespaces) the kernel
runs as a plain child process with the same resource limits, in its own session, and the
report says in one line that no sandbox was used: the verdicts are still computed in the
grading process, so printing or redefining things cannot change a score, but the student's
code can read and write what the grading user can. On macOS ``sandbox-exec`` with a profile
that denies ``file-write*`` outside the scratch directory and ``network*`` would be the
equivalent; it is deprecated by Apple and not implemented here: grade in a Linux container.
"""

from __future__ import annotations

import contextlib
import functools
import os
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Sandbox", "bwrap_works", "find_sandbox", "kernel_command", "start_kernel", "stop_kernel"]

#: Folders every sandbox hides behind an empty directory (besides the configured ones).
ALWAYS_HIDDEN = ("/tmp", "/root", "/home", "/var/tmp", "/dev/shm")


@dataclass(frozen=True)
class Sandbox:
    """Which sandbox is used, in words for the report."""

    kind: str  # "bubblewrap" or "none"
    note: str


@functools.cache
def bwrap_works(bwrap: str) -> bool:
    """Whether ``bwrap`` can create the namespaces here (it needs unprivileged user namespaces or root)."""
    try:
        proc = subprocess.run([bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
                               "--unshare-all", "--die-with-parent", "true"],
                              capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return False
    return proc.returncode == 0


def find_sandbox(wanted: str = "auto") -> Sandbox:
    """``wanted``: ``"auto"`` (bubblewrap when it works), ``"bubblewrap"`` (required) or ``"none"``."""
    from ..errors import InputError

    if wanted not in ("auto", "bubblewrap", "none"):
        raise InputError(f"unknown sandbox {wanted!r}; use auto, bubblewrap or none")
    if wanted == "none":
        return Sandbox("none", "sandbox: none (--sandbox none): student code ran with resource limits only; "
                               "verdicts were computed by the grader")
    bwrap = shutil.which("bwrap")
    if bwrap and bwrap_works(bwrap):
        return Sandbox("bubblewrap", "sandbox: bubblewrap (read-only file system, solutions hidden, no network, "
                                     "own PID namespace, hard memory/CPU limits)")
    why = "bubblewrap (bwrap) is not installed" if not bwrap else "bubblewrap cannot create namespaces here"
    if wanted == "bubblewrap":
        raise InputError(f"--sandbox bubblewrap: {why}; install the bubblewrap package")
    return Sandbox("none", f"sandbox: none ({why}): student code ran with resource limits only; "
                           "verdicts were computed by the grader")


def _hideable(path: Path, keep: Sequence[Path]) -> bool:
    """A folder can be hidden unless what the kernel needs (python, the package) is inside it."""
    return not any(k == path or path in k.parents for k in keep)


def kernel_command(sandbox: Sandbox, scratch: Path, hide: Sequence[str | Path] = ()) -> list[str]:
    """The command line that starts the kernel (``python -m course_nst.instructor.kernel``)."""
    python = [sys.executable, "-m", "course_nst.instructor.kernel"]
    if sandbox.kind != "bubblewrap":
        return python
    import course_nst

    keep = [Path(p).resolve() for p in (sys.prefix, sys.base_prefix, Path(course_nst.__file__).parent,
                                         Path(sys.executable).parent)]
    keep += [Path(p).resolve() for p in sys.path if p and Path(p).is_dir()]
    cmd = [shutil.which("bwrap") or "bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    for folder in ALWAYS_HIDDEN:
        if Path(folder).is_dir() and _hideable(Path(folder).resolve(), keep):
            cmd += ["--tmpfs", folder]
    for item in hide:
        p = Path(item).resolve()
        if p.is_dir() and _hideable(p, keep):
            cmd += ["--tmpfs", str(p)]
        elif p.is_dir():  # holds what the kernel needs: hide its notebooks and markdown files instead
            for f in sorted(p.glob("*.ipynb")) + sorted(p.glob("*.md")):
                cmd += ["--ro-bind", "/dev/null", str(f)]
        elif p.is_file():
            cmd += ["--ro-bind", "/dev/null", str(p)]
    cmd += ["--bind", str(scratch), str(scratch), "--chdir", str(scratch),
            "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
            "--setenv", "HOME", str(scratch), "--setenv", "TMPDIR", str(scratch), "--"]
    return cmd + python


def _limit_cpu(seconds: int) -> None:
    resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def start_kernel(sandbox: Sandbox, scratch: Path, cpu_seconds: int, hide: Sequence[str | Path] = (),
                 sys_path: Sequence[str] = ()) -> subprocess.Popen:
    """Start the kernel in its sandbox, in a new session (so :func:`stop_kernel` reaches it all)."""
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "PYTHONPATH", "VIRTUAL_ENV")}
    env.update(HOME=str(scratch), TMPDIR=str(scratch), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONDONTWRITEBYTECODE="1", MPLBACKEND="Agg", PYTHONHASHSEED="0")
    token = "course-nst-kernel-" + secrets.token_hex(8)
    env["COURSE_NST_KERNEL"] = token
    if sys_path:
        env["PYTHONPATH"] = os.pathsep.join([*sys_path, *filter(None, [env.get("PYTHONPATH")])])
    proc = subprocess.Popen(kernel_command(sandbox, scratch, hide), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, cwd=scratch, env=env, start_new_session=True,
                            preexec_fn=lambda: _limit_cpu(cpu_seconds))
    proc.course_nst_token = token  # type: ignore[attr-defined]
    return proc


def _pid_namespace(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


def _descendant_namespaces(pid: int) -> set[str]:
    """The PID namespaces of ``pid``'s children and grandchildren (bubblewrap's init and the kernel)."""
    found: set[str] = set()
    todo: list[int] = [pid]
    seen: set[int] = set()
    while todo and len(seen) < 64:
        p = todo.pop()
        seen.add(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split() if int(c) not in seen]
        except OSError:
            continue
        ns = _pid_namespace(p)
        if ns:
            found.add(ns)
    return found


def _leftovers(namespaces: set[str], token: str) -> list[int]:
    """Processes in those PID namespaces, or carrying the kernel's token in their environment."""
    mine = os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == mine:
            continue
        pid = int(entry)
        if namespaces and _pid_namespace(pid) in namespaces:
            found.append(pid)
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if token and token.encode() in f.read():
                    found.append(pid)
        except OSError:
            pass
    return found


def stop_kernel(proc: subprocess.Popen) -> None:
    """Kill the kernel's process group and every process left in its PID namespace or carrying its token
    (a child started in a new session), and wait until they are gone."""
    namespaces = _descendant_namespaces(proc.pid) if os.path.isdir("/proc") else set()
    namespaces.discard(_pid_namespace(os.getpid()) or "")
    token = getattr(proc, "course_nst_token", "")
    for stream in (proc.stdin, proc.stdout):
        try:
            if stream is not None:
                stream.close()
        except OSError:
            pass
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)
    if not os.path.isdir("/proc"):
        return
    for _ in range(100):
        left = _leftovers(namespaces, token)
        if not left:
            return
        for pid in left:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)
