"""Is the checker code the grader is about to trust the code that was installed or committed?

:func:`checker_files` lists the source files of the exercise registry's package (for the
course: ``course_nst/checks/*.py``). :func:`record` hashes them when the grader imports the
registry, *before* any student code runs; :func:`problems` compares them, before every
exercise, with

1. that record (a file changed while grading, e.g. by an unsandboxed student cell), and
2. a reference from outside this run: the ``RECORD`` of the installed distribution (a
   regular ``pip install``), or else the committed version in the git checkout (an
   editable install of the course's repository).

A checker that differs is reported and the exercise is not scored with it.
"""

from __future__ import annotations

import base64
import hashlib
import subprocess
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from types import ModuleType

__all__ = ["checker_files", "problems", "record", "reference"]


def checker_files(module: ModuleType) -> list[Path]:
    """The ``.py`` files of the registry's package (or the registry module's own file)."""
    file = Path(getattr(module, "__file__", "") or "")
    if not file.is_file():
        return []
    if file.name == "__init__.py":
        return sorted(file.parent.rglob("*.py"))
    return [file]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def record(files: list[Path]) -> dict[Path, str]:
    """SHA-256 of each file now."""
    return {f: _sha256(f) for f in files}


def _from_dist_record(files: list[Path]) -> dict[Path, str]:
    """Hashes from the installed distribution's RECORD, for the files it lists."""
    found: dict[Path, str] = {}
    try:
        dist = metadata.distribution("course-nst")
    except metadata.PackageNotFoundError:
        return found
    wanted = {f.resolve(): f for f in files}
    for entry in dist.files or []:
        if entry.hash is None or entry.hash.mode != "sha256":
            continue
        path = Path(str(entry.locate())).resolve()
        if path in wanted:
            digest = base64.urlsafe_b64decode(entry.hash.value + "=" * (-len(entry.hash.value) % 4)).hex()
            found[wanted[path]] = digest
    return found


def _git_blob(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _from_git(files: list[Path]) -> dict[Path, str]:
    """Git blob ids of the committed (HEAD) version of each file, where the files are in a checkout."""
    if not files:
        return {}
    folder = files[0].parent
    try:
        top = subprocess.run(["git", "-C", str(folder), "rev-parse", "--show-toplevel"], capture_output=True,
                             text=True, timeout=20)
        if top.returncode != 0:
            return {}
        root = Path(top.stdout.strip()).resolve()
        rel = [str(f.resolve().relative_to(root)) for f in files]
        tree = subprocess.run(["git", "-C", str(root), "ls-tree", "HEAD", "--", *rel], capture_output=True,
                              text=True, timeout=20)
    except (OSError, ValueError, subprocess.SubprocessError):
        return {}
    by_rel = dict(zip(rel, files, strict=True))
    found = {}
    for line in tree.stdout.splitlines():
        meta, _, name = line.partition("\t")
        parts = meta.split()
        if len(parts) == 3 and parts[1] == "blob" and name in by_rel:
            found[by_rel[name]] = "git:" + parts[2]
    return found


def reference(files: list[Path]) -> tuple[str, dict[Path, str]]:
    """Where the trusted hashes come from, and the hashes (SHA-256, or ``git:`` blob ids)."""
    dist = _from_dist_record(files)
    if dist and len(dist) == len(files):
        return "the installed distribution's RECORD", dist
    git = _from_git(files)
    if git:
        return "the committed version (git HEAD)", git
    return "", {}


def problems(recorded: Mapping[Path, str], trusted: Mapping[Path, str]) -> list[str]:
    """What differs: a file changed since grading started, or from the trusted reference."""
    found = []
    for path, digest in recorded.items():
        if not path.is_file():
            found.append(f"checker file {path} was deleted")
            continue
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != digest:
            found.append(f"checker file {path} changed while grading")
            continue
        want = trusted.get(path)
        if want is None:
            continue
        got = "git:" + _git_blob(data) if want.startswith("git:") else hashlib.sha256(data).hexdigest()
        if got != want:
            found.append(f"checker file {path} differs from {'git HEAD' if want.startswith('git:') else 'RECORD'}")
    untracked = [p for p in recorded if trusted and p not in trusted]
    if untracked:
        found.append(f"checker file {untracked[0]} is not in the trusted reference")
    return found

