"""The attacks a student could write in an exercise cell: each scores zero with a reason (or an isolated
failure), changes no file outside the kernel's scratch directory and leaves no process behind.

Each case starts one sandboxed kernel (a few seconds); the verdicts are computed here, so every attack
below only changes what happens inside the kernel.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest
from test_release import registry_dir  # noqa: F401 - fixture

from course_nst.checks import Prediction
from course_nst.instructor import verify
from course_nst.instructor.grading import GradeConfig, grade_exercise, load_registry
from course_nst.instructor.sandbox import find_sandbox

REPO = Path(__file__).resolve().parents[1]
MARKER = "course-nst-attack-marker-7f3a"
RIGHT = "    return 0.5 * ((a_C - a_G) ** 2).sum()\n"
WRONG = "    return ((a_C - a_G) ** 2).sum()\n"
ZERO = {"failed", "timed out", "crashed", "exited", "tampered", "error", "missing"}

SANDBOX = find_sandbox("auto")
# `make test` installs bubblewrap (.ci/system-deps) and sets COURSE_NST_REQUIRE_SANDBOX=1: there a missing
# sandbox fails these tests instead of skipping them.
REQUIRED = os.environ.get("COURSE_NST_REQUIRE_SANDBOX") == "1"
needs_sandbox = pytest.mark.skipif(SANDBOX.kind != "bubblewrap" and not REQUIRED, reason=SANDBOX.note)


def test_the_sandbox_is_there_when_required():
    if not REQUIRED:
        pytest.skip("COURSE_NST_REQUIRE_SANDBOX is not set")
    assert SANDBOX.kind == "bubblewrap", SANDBOX.note


def _tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def _marked_processes() -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if MARKER.encode() in (entry / "cmdline").read_bytes():
                    found.append(entry.name)
            except OSError:
                pass
    return found


@pytest.fixture(scope="module")
def course():
    return load_registry(GradeConfig())


def attack(course, source: str, tmp_path: Path, **config) -> tuple[str, str]:
    """Grade ``source`` as the content_cost exercise; check nothing outside the kernel changed."""
    before = _tree_digest(REPO / "course_nst"), _tree_digest(tmp_path)
    status, reason = grade_exercise(
        textwrap.dedent(source),
        course["content_cost"],
        course,
        GradeConfig(timeout=30, memory_mb=512, **config),
        notebook=tmp_path / "02_content_cost-mallory.ipynb",
    )
    assert (_tree_digest(REPO / "course_nst"), _tree_digest(tmp_path)) == before, "a file outside scratch changed"
    assert not (REPO / "pwned").exists()
    assert _marked_processes() == [], "a process outlived grading"
    assert status in ZERO and reason, (status, reason)
    return status, reason


@needs_sandbox
def test_redefining_the_kernel_side_and_rewriting_stdout_does_not_pay(course, tmp_path):
    status, reason = attack(
        course,
        f"""
        import sys, io
        import course_nst.instructor.kernel as k, course_nst.instructor.protocol as p
        class Liar(io.StringIO):
            def write(self, s):
                return super().write(s.replace("failed", "passed"))
        sys.stdout = sys.__stdout__ = Liar()
        k.Kernel.describe = staticmethod(lambda e: {{}})
        p.encode = lambda value, blobs, handle_of=None, depth=0: {{"object": "passed"}}
        def emit(*a, **k): print("passed")
        _course_nst_grader_emit = _course_nst_grader_run = emit
        def content_cost(a_C, a_G):
        {WRONG}""",
        tmp_path,
    )
    assert status in ("failed", "error"), reason  # a broken reply is an error: zero either way


@needs_sandbox
def test_disabling_the_checker_by_its_code_object_does_not_pay(course, tmp_path):
    status, reason = attack(
        course,
        f"""
        import course_nst.checks.content as c, course_nst.checks as checks
        c.diagnose_content_cost.__code__ = (lambda fn: []).__code__
        checks.EXERCISES["content_cost"].diagnose.__code__ = (lambda fn: []).__code__
        def content_cost(a_C, a_G):
        {WRONG}""",
        tmp_path,
    )
    assert status == "failed" and "2 times too large" in reason


@needs_sandbox
def test_rewriting_the_checker_files_is_impossible_and_later_runs_are_unaffected(course, tmp_path):
    status, reason = attack(
        course,
        f"""
        import course_nst.checks.content as c, course_nst.costs as costs
        for path in (c.__file__, costs.__file__):
            try:
                with open(path, "a") as f:
                    f.write("\\ndiagnose_content_cost = lambda fn: []\\n")
            except OSError:
                pass
        def content_cost(a_C, a_G):
        {WRONG}""",
        tmp_path,
    )
    assert status == "failed" and "2 times too large" in reason
    status, reason = attack(course, "def content_cost(a_C, a_G):\n" + WRONG, tmp_path)
    assert status == "failed" and "2 times too large" in reason


@needs_sandbox
def test_a_process_started_in_a_new_session_does_not_outlive_grading(course, tmp_path):
    attack(
        course,
        f'''
        import subprocess, sys, os
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "{MARKER}"], start_new_session=True)
        if os.fork() == 0:
            os.setsid()
            os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(120)", "{MARKER}"])
        def content_cost(a_C, a_G):
        {WRONG}''',
        tmp_path,
    )


@needs_sandbox
def test_raising_the_memory_limit_is_refused(course, tmp_path):
    status, reason = attack(
        course,
        f"""
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        assert soft == hard, "the limit is not hard"
        try:
            resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        except ValueError:
            pass
        def content_cost(a_C, a_G):
            blob = bytearray(8 * 2**30)
        {RIGHT}""",
        tmp_path,
    )
    assert status == "failed" and "MemoryError" in reason


@pytest.mark.parametrize("how", ["wrap", "reload", "exec-source"])
def test_calling_the_package_implementation_is_detected(course, tmp_path, how):
    body = {
        "wrap": "from course_nst import costs\ndef content_cost(a_C, a_G):\n    return costs.content_cost(a_C, a_G)\n",
        "reload": "import importlib, course_nst.costs\nmine = importlib.reload(course_nst.costs).content_cost\n"
        "def content_cost(a_C, a_G):\n    return mine(a_C, a_G)\n",
        "exec-source": "import course_nst.costs as c\nns = {}\n"
        "exec(compile(open(c.__file__).read(), c.__file__, 'exec'), ns)\n"
        "def content_cost(a_C, a_G):\n    return ns['content_cost'](a_C, a_G)\n",
    }[how]
    status, reason = attack(course, body, tmp_path, sandbox="auto" if how == "wrap" else SANDBOX.kind)
    assert status == "failed" and "reference implementation" in reason


@needs_sandbox
def test_solutions_other_notebooks_and_the_network_are_out_of_reach(course, tmp_path):
    (tmp_path / "02_content_cost-bob.ipynb").write_text("bob's answers")
    status, reason = attack(
        course,
        f"""
        import os, socket
        seen = []
        for path in ({str(REPO / "notebooks" / "02_content_cost.ipynb")!r},
                     {str(tmp_path / "02_content_cost-bob.ipynb")!r}):
            try:
                seen.append(len(open(path).read()) > 0)
            except OSError:
                seen.append(False)
        for path in ({str(REPO / "pwned")!r}, {str(tmp_path / "pwned")!r}, os.path.expanduser("~/../pwned")):
            try:
                open(path, "w").write("x")
            except OSError:
                pass
        try:
            socket.create_connection(("10.255.255.1", 80), timeout=2)
            seen.append(True)
        except OSError:
            seen.append(False)
        def content_cost(a_C, a_G):
            if any(seen):
        {"    " + RIGHT}
        {WRONG}""",
        tmp_path,
    )
    assert status == "failed" and "2 times too large" in reason


def test_os_exit_is_reported_as_such(course, tmp_path):
    status, reason = attack(course, "import os\ndef content_cost(a_C, a_G):\n    os._exit(0)\n", tmp_path)
    assert status == "exited" and "os._exit" in reason and "memory" not in reason


def test_without_a_sandbox_the_verdict_is_still_computed_here(course, tmp_path):
    status, reason = attack(
        course,
        "import sys\nsys.stdout.write('passed')\ndef content_cost(a_C, a_G):\n" + WRONG,
        tmp_path,
        sandbox="none",
    )
    assert status == "failed" and "2 times too large" in reason
    assert find_sandbox("none").note.startswith("sandbox: none")


def test_a_checker_changed_on_disk_is_reported_not_trusted(tmp_path):
    git = shutil.which("git")
    if git is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "course"
    (repo / "checks").mkdir(parents=True)
    checker = repo / "checks" / "__init__.py"
    checker.write_text("EXERCISES = {}\n")
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    for cmd in (["init", "-q"], ["add", "."], ["commit", "-qm", "checkers"]):
        subprocess.run([git, "-C", str(repo), *cmd], check=True, env=env, capture_output=True)
    files = [checker]
    source, trusted = verify.reference(files)
    assert source == "the committed version (git HEAD)"
    recorded = verify.record(files)
    assert verify.problems(recorded, trusted) == []
    checker.write_text("EXERCISES = {}  # every answer passes\n")  # during grading
    assert verify.problems(recorded, trusted) == [f"checker file {checker} changed while grading"]
    # a later run records the tampered file, but the committed version still tells
    assert verify.problems(verify.record(files), trusted) == [f"checker file {checker} differs from git HEAD"]


def test_a_tampered_checker_scores_zero_with_the_reason(tmp_path, registry_dir):  # noqa: F811
    copy = tmp_path / "copied_checks.py"
    copy.write_text((registry_dir / "fake_nst_checks.py").read_text())
    config = GradeConfig(registry="copied_checks", sys_path=(str(tmp_path),), timeout=20)
    from course_nst.instructor.grading import Checkers

    registry = load_registry(config)
    checkers = Checkers.of(config)
    copy.write_text(copy.read_text() + "\n# changed\n")
    status, reason = grade_exercise(
        "def add(a, b):\n    return a - b\n", registry["add"], registry, config, checkers=checkers
    )
    assert status == "error" and reason == f"the checker is not trusted: checker file {copy} changed while grading"


# ---------------------------------------------------------------- prediction questions


def predict(course, source: str, tmp_path: Path, **config) -> tuple[str, str]:
    """Grade ``source`` as the answer cell of the course's first prediction question; check nothing outside
    the kernel changed. ``{variable}``, ``{right}`` and ``{wrong}`` in ``source`` are filled in."""
    [question, *_] = [item for item in course.values() if isinstance(item, Prediction)]
    right, wrong = question.answer, question.answer * 3 + 7
    before = _tree_digest(REPO / "course_nst"), _tree_digest(tmp_path)
    status, reason = grade_exercise(
        textwrap.dedent(source).format(variable=question.variable, right=right, wrong=wrong, gid=question.grade_id),
        question,
        course,
        GradeConfig(**{"timeout": 30, "memory_mb": 512, **config}),
        notebook=tmp_path / f"{question.notebook}-mallory.ipynb",
    )
    assert (_tree_digest(REPO / "course_nst"), _tree_digest(tmp_path)) == before, "a file outside scratch changed"
    assert status in ZERO and reason, (status, reason)
    told = re.search(rf"(?<![\w.]){re.escape(f'{right:g}')}(?![\w.])", reason.replace("4 or 0.5", ""))
    assert told is None, f"the reason tells the answer: {reason}"  # the hint, never the answer
    return status, reason


def test_a_right_prediction_passes_so_the_attacks_below_are_judged_by_the_same_path(course, tmp_path):
    [question, *_] = [item for item in course.values() if isinstance(item, Prediction)]
    source = f"# Your prediction (a number), before you run the next cell:\n{question.variable} = {question.answer!r}\n"
    assert grade_exercise(source, question, course, GradeConfig(timeout=30)) == ("passed", "")


def test_redefining_check_prediction_patching_predictions_and_printing_a_verdict_do_not_pay(course, tmp_path):
    status, reason = predict(
        course,
        """
        import course_nst.checks as checks, course_nst.checks._common as common
        def check_prediction(grade_id, value):
            print(f"{{grade_id}}: right.")
        checks.check_prediction = check_prediction
        checks.PREDICTIONS["{gid}"] = checks.Prediction("{gid}", "{variable}", "nb", "q", {wrong}, "why", "hint")
        object.__setattr__(checks.PREDICTIONS["{gid}"], "answer", {wrong})
        common.Prediction.evaluate = lambda self, value: common.CheckResult(self.variable, True)
        print('{{"status": "passed", "score": 1}}')
        check_prediction("{gid}", {wrong})
        {variable} = {wrong}
        """,
        tmp_path,
    )
    assert status == "failed" and "is not it. Hint:" in reason


@pytest.mark.parametrize(
    "value, type_name",
    [
        ("Liar({right})", "Liar"),  # __eq__ / __float__ / __repr__ / __format__ lie
        ("float({right}) > 0", "bool"),
        ("np.float64({right})", "float64"),
        ("Sixty({right})", "Sixty"),  # a subclass of a NumPy float
        ("Named({right})", "float"),  # a float subclass that calls itself float
        ("'{right}'", "str"),
    ],
)
def test_a_number_that_is_not_a_plain_int_or_float_does_not_pay(course, tmp_path, value, type_name):
    status, reason = predict(
        course,
        f"""
        class Liar(float):
            __eq__ = __ne__ = __lt__ = __gt__ = __le__ = __ge__ = lambda self, other: True
            __hash__ = float.__hash__
            __float__ = lambda self: float({{right}})
            __repr__ = __str__ = lambda self: "{{right}}"
            __format__ = lambda self, spec: "{{right}}"
        class Sixty(np.float64):
            __eq__ = lambda self, other: True
        Named = type("float", (float,), {{{{}}}})
        {{variable}} = {value}
        """,
        tmp_path,
    )
    assert (status, reason) == ("failed", f"your prediction should be a plain number such as 4 or 0.5, got {type_name}")


@pytest.mark.parametrize(
    "sends", ["dict(bogus=1)", "dict(float='four')", "dict(object='passed')", "dict(int='1' * 5000)"]
)
def test_a_kernel_made_to_send_something_else_gets_zero(course, tmp_path, sends):
    status, reason = predict(
        course,
        f"""
        import course_nst.instructor.protocol as protocol
        protocol.encode_number = lambda value: {sends}
        {{variable}} = {{right}}
        """,
        tmp_path,
    )
    assert (status, reason) in (
        ("error", "the kernel sent a malformed reply (the answer cell interfered with the grader's connection)"),
        ("failed", "your prediction should be a plain number such as 4 or 0.5, got passed"),
    )


def test_an_answer_cell_that_ends_its_kernel_or_loops_gets_zero(course, tmp_path):
    status, reason = predict(course, "import os\n{variable} = {right}\nos._exit(0)\n", tmp_path)
    assert status == "exited" and "os._exit" in reason
    status, reason = predict(course, "{variable} = {right}\nwhile True:\n    pass\n", tmp_path, timeout=3)
    assert status == "timed out" and reason.startswith("timed out after 3 s (while the cell ran")
