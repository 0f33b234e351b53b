"""The course-nst command line: it works, and bad input gives one line and exit code 2."""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from course_nst.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _bad_inputs(tmp_path):
    good = tmp_path / "good.png"
    Image.fromarray((np.random.default_rng(0).random((32, 32, 3)) * 255).astype("uint8")).save(good)
    text = tmp_path / "notes.png"
    text.write_text("this is not an image")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (1, 1)).save(tiny)
    jpeg = tmp_path / "full.jpg"
    Image.fromarray((np.random.default_rng(1).random((64, 64, 3)) * 255).astype("uint8")).save(jpeg, quality=90)
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(jpeg.read_bytes()[: len(jpeg.read_bytes()) // 2])
    folder = tmp_path / "folder"
    folder.mkdir()
    return good, {
        "text": (text, "not an image"),
        "empty": (empty, "empty"),
        "tiny": (tiny, "too small"),
        "truncated": (truncated, "truncated"),
        "folder": (folder, "directory"),
        "missing": (tmp_path / "missing.png", "neither an existing file nor a sample name"),
    }


@pytest.mark.parametrize("case", ["text", "empty", "tiny", "truncated", "folder", "missing"])
@pytest.mark.parametrize("role", ["content", "style"])
def test_bad_image_files(tmp_path, capsys, case, role):
    good, bad = _bad_inputs(tmp_path)
    path, words = bad[case]
    args = [str(path), str(good)] if role == "content" else [str(good), str(path)]
    code = main(["stylize", *args, "-o", str(tmp_path / "out.png"), "--steps", "1", "-q"])
    err = capsys.readouterr().err
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0]
    assert not (tmp_path / "out.png").exists()


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--size", "-3"], "must be a positive number"),
        (["--size", "big"], "expected a whole number"),
        (["--backbone", "resnet"], "unknown backbone 'resnet'"),
        (["--content-layer", "conv9_9", "--backbone", "efficientnet_lite0"], "unknown layer 'conv9_9'"),
        (["--style-layers", "stem", "nope", "--backbone", "efficientnet_lite0"], "unknown layer 'nope'"),
        (["--beta", "-1"], "must be a finite number >= 0"),
        (["--init", "zeros"], "invalid choice"),
    ],
)
def test_bad_options(tmp_path, capsys, extra, words):
    code = main(["stylize", "chelsea", "waves", "-o", str(tmp_path / "o.png"), "-q", *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and words in err


def test_bad_output_name(tmp_path, capsys):
    assert main(["stylize", "chelsea", "waves", "-o", str(tmp_path / "o.gif")]) == 2
    assert ".png or .jpg" in capsys.readouterr().err


def test_stylize_sample_names_and_files(tmp_path, capsys):
    good, _ = _bad_inputs(tmp_path)
    out = tmp_path / "sub" / "result.png"
    code = main(
        [
            "stylize",
            "chelsea",
            str(good),
            "-o",
            str(out),
            "--size",
            "48",
            "--steps",
            "3",
            "--backbone",
            "efficientnet_lite0",
            "-q",
        ]
    )
    stdout = capsys.readouterr().out
    assert code == 0, stdout
    assert out.is_file() and Image.open(out).size == (48, 32)
    assert f"wrote {out}" in stdout and "J before:" in stdout and "after:" in stdout


def test_stylize_passes_winograd_and_float32(tmp_path, capsys, monkeypatch):
    import course_nst.transfer as transfer

    seen = []
    real = transfer.style_transfer

    def recording(*args, **kwargs):
        seen.append((kwargs["winograd"], kwargs["bfloat16"]))
        return real(*args, **kwargs)

    monkeypatch.setattr(transfer, "style_transfer", recording)
    # without a flag, the library decides (None); each flag says one thing
    for flag in ([], ["--winograd"], ["--float32"], ["--winograd", "--float32"]):
        out = tmp_path / f"r{len(seen)}.png"
        code = main(
            [
                "stylize",
                "chelsea",
                "waves",
                "-o",
                str(out),
                "--size",
                "32",
                "--steps",
                "2",
                "--backbone",
                "efficientnet_lite0",
                "-q",
                *flag,
            ]
        )
        assert code == 0, capsys.readouterr()
    assert seen == [(None, None), (True, None), (None, False), (True, False)]


def test_samples_and_weights_status(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    assert main(["samples"]) == 0
    out = capsys.readouterr().out
    assert "chelsea" in out and "swirls" in out
    assert main(["weights", "status"]) == 0
    out = capsys.readouterr().out
    assert "vgg19" in out and "missing" in out and "course-nst weights download vgg19" in out
    assert re.search(r"^vgg19 +original +present +\S+vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin$", out, re.M)
    assert re.search(r"^vgg19 +torchvision +missing ", out, re.M)
    assert re.search(r"^efficientnet_lite0 +pretrained +present ", out, re.M)
    assert main(["weights", "download", "resnet"]) == 2


def test_console_script_gives_no_traceback(tmp_path):
    """The real entry point, in a fresh process: one line on stderr, exit code 2."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "course_nst",
            "stylize",
            str(tmp_path / "nope.jpg"),
            "waves",
            "-o",
            str(tmp_path / "o.png"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
