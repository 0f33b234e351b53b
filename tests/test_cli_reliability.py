"""The command line as a careless user (or a job scheduler) meets it: bad values give one line on stderr and
exit code 2 before any work starts, an interrupted run keeps its best image, no input is overwritten.

Everything runs ``python -m course_nst`` in a fresh process, as a user would.
"""

from __future__ import annotations

import hashlib
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
FAST = ["--backbone", "efficientnet_lite0", "-q"]


def run(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "course_nst", *args], capture_output=True, text=True, cwd=ROOT, env=ENV, timeout=timeout
    )


def one_line_error(proc: subprocess.CompletedProcess, *words: str) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in proc.stderr, proc.stderr
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def start_long_run(out: Path) -> subprocess.Popen:
    """A stylize run that goes on for long, returned once its loop has done a few evaluations."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "course_nst",
            "stylize",
            "chelsea",
            "waves",
            "-o",
            str(out),
            "--size",
            "64",
            "--steps",
            "100000",
            "--backbone",
            "efficientnet_lite0",
        ],
        cwd=ROOT,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    seen, deadline = b"", time.monotonic() + 300
    while b" 3/100000" not in seen and time.monotonic() < deadline and proc.poll() is None:
        seen += os.read(proc.stderr.fileno(), 4096)  # the progress bar on stderr
    assert b" 3/100000" in seen, seen[-500:]
    return proc


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("in") / "photo.png"
    Image.fromarray((np.random.default_rng(0).random((40, 48, 3)) * 255).astype("uint8")).save(path)
    return path


def test_output_equal_to_an_input_is_refused_and_the_input_untouched(photo, tmp_path):
    before = digest(photo)
    one_line_error(run("stylize", str(photo), "waves", "-o", str(photo), *FAST), "is the input image")
    link = tmp_path / "link.png"
    os.link(photo, link)
    one_line_error(run("stylize", "chelsea", str(photo), "-o", str(link), *FAST), "is the input image")
    assert digest(photo) == before


@pytest.mark.parametrize("case", ["parent is a file", "read-only folder"])
def test_an_unwritable_output_is_refused_before_the_run(tmp_path, case):
    if case == "parent is a file":
        (tmp_path / "afile").write_text("x")
        out = tmp_path / "afile" / "o.png"
    elif os.geteuid() == 0:  # root writes into any folder of a writable file system; /proc takes no new files
        out = Path("/proc") / "course-nst-test" / "o.png"
    else:
        folder = tmp_path / "ro"
        folder.mkdir()
        folder.chmod(0o500)
        out = folder / "o.png"
    start = time.monotonic()
    one_line_error(run("stylize", "chelsea", "waves", "-o", str(out), *FAST), "cannot write")
    assert time.monotonic() - start < 60  # refused at once, not after a run


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--size", "100000"], "needs about"),
        (["--size", "4"], "at least 8 pixels"),
        (["--device", "mps"], "MPS is not available"),
        (["--device", "tpu"], "unknown device"),
        (["--seed", "-1"], "between 0 and 2**63-1"),
        (["--seed", str(2**63)], "between 0 and 2**63-1"),
        (["--alpha", "0", "--beta", "0", "--tv-weight", "0"], "neither content nor style"),
    ],
)
def test_bad_values_give_one_line_and_no_traceback(tmp_path, extra, words):
    if extra[:2] == ["--device", "mps"]:
        import torch

        if torch.backends.mps.is_available():
            pytest.skip("this machine has MPS")
    out = tmp_path / "o.png"
    one_line_error(run("stylize", "chelsea", "waves", "-o", str(out), *FAST, *extra), *words)
    assert not out.exists()


def test_grade_csv_to_an_unwritable_path_is_refused_before_grading(tmp_path):
    (tmp_path / "afile").write_text("x")
    nb = tmp_path / "02_content_cost-x.ipynb"
    nb.write_text("{}")
    one_line_error(run("grade", str(nb), "--csv", str(tmp_path / "afile" / "s.csv")), "--csv", "not a folder")
    one_line_error(run("grade", str(nb), "--json", str(tmp_path)), "--json", "is a directory")


def test_sigterm_keeps_the_best_image_and_exits_130(tmp_path):
    out = tmp_path / "o.png"
    proc = start_long_run(out)
    proc.send_signal(signal.SIGTERM)
    _, stderr_bytes = proc.communicate(timeout=120)
    stderr = stderr_bytes.decode()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "interrupted after" in stderr and str(out) in stderr
    assert out.is_file() and Image.open(out).size[0] == 64
    mode = stat.S_IMODE(out.stat().st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask


def test_a_second_ctrl_c_prints_no_traceback_and_still_saves(tmp_path):
    out = tmp_path / "o.png"
    proc = start_long_run(out)
    for _ in range(3):
        proc.send_signal(signal.SIGINT)
        time.sleep(0.05)
    _, stderr_bytes = proc.communicate(timeout=120)
    stderr = stderr_bytes.decode()
    assert proc.returncode == 130 and "Traceback" not in stderr, stderr
    assert out.is_file() and "the best image so far was saved" in stderr  # the later Ctrl-Cs did not cut the save


def test_a_small_file_that_decodes_to_a_huge_image_is_refused_in_one_line(tmp_path):
    bomb = tmp_path / "bomb.png"
    Image.new("RGB", (12000, 12000), (10, 20, 30)).save(bomb)
    assert bomb.stat().st_size < 1_000_000
    proc = run("stylize", str(bomb), "waves", "-o", str(tmp_path / "o.png"), *FAST)
    one_line_error(proc, "megapixels")
    assert "Warning" not in proc.stderr


def test_a_run_whose_cost_never_decreases_warns():
    import warnings

    import torch

    from course_nst.transfer import style_transfer

    content = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        style_transfer(
            content,
            content,
            backbone="efficientnet_lite0",
            size=32,
            steps=3,
            optimizer="adam",
            lr=1e-30,
            progress=False,
        )  # a step too small to change any pixel
    assert any("never decreased" in str(w.message) for w in caught)


def test_ctrl_c_while_the_command_starts_prints_no_traceback(tmp_path):
    # 1 s in, the command is still importing PyTorch (a few seconds here): that Ctrl-C must
    # end it like any other, with no traceback
    out = tmp_path / "o.png"
    proc = subprocess.Popen(
        [sys.executable, "-m", "course_nst", "stylize", "chelsea", "waves", "-o", str(out), *FAST],
        cwd=ROOT,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)  # (the child restores Ctrl-C's default: a background job ignores it)
    _, err = proc.communicate(timeout=120)
    assert "Traceback" not in err, err
    assert proc.returncode == 130, (proc.returncode, err)
    assert not out.exists()
