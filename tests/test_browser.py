"""The notebooks as a student uses them: JupyterLab in a real browser (Chromium, driven by Playwright).

The test starts JupyterLab on a free local port with a token, on a temporary copy of the
notebooks (nothing in ``notebooks/`` is changed), and for each notebook does what a student
does: opens it, types smaller sizes into its parameters cell (so that the test takes minutes,
not a quarter of an hour; the same edit a student without a GPU may make), runs all cells from
the Run menu, and checks that no error output appears and the browser console stays free of
errors. In notebook 01 it chooses another unit in the unit browser, in notebook 04 it sets the
explorer's steps and start and presses Run, and checks that the image changed and is drawn at
its own size (the img element's box equals its natural size).

It needs Debian's ``chromium`` (``.ci/system-deps`` installs it; ``COURSE_NST_CHROMIUM`` names
another binary) and the ``playwright`` package (the dev extra); without them it fails, it is
never skipped. Screenshots of every step go to ``$COURSE_NST_ARTIFACTS`` (default
``out/browser-test/``), which the test prints.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
CHROMIUM = os.environ.get("COURSE_NST_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("COURSE_NST_ARTIFACTS", ROOT / "out" / "browser-test"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# What the test types into each notebook's parameters cell: smaller images, fewer steps.
SMALLER = {
    "01": {"IMAGE_SIZE": 128, "N_IMAGES": 16},
    "02": {"SIZE": 64, "STEPS": 20, "TRANSFER_STEPS": 20},
    "03": {"SIZE": 64, "STEPS": 20, "N_IMAGES": 8},
    "04": {"SIZE": 96, "STEPS": 20, "SMALL_SIZE": 64, "SMALL_STEPS": 20, "GALLERY_STEPS": 10},
    "05": {"SIZE": 96, "SMALL": 64, "REGION_SIZE": 96, "STEPS": 20},
}
TEXTS = "elements => elements.map(e => e.textContent)"  # innerText is empty for cells out of view
RUN_ALL_TIMEOUT_S = int(os.environ.get("COURSE_NST_BROWSER_TIMEOUT", "900"))
STOPPED_IDLE_S = 20  # a kernel idle this long, mid Run All, with an error shown: the run stopped there
SETTINGS = {  # no toasts asking about news, no requests to the internet
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
        "doNotDisturbMode": True,
    },
}


def _require(what: str) -> None:
    pytest.fail(f"the browser test needs {what}; it is part of the test suite and is not skipped", pytrace=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def artifacts() -> Path:
    if ARTIFACTS.exists():
        shutil.rmtree(ARTIFACTS)
    ARTIFACTS.mkdir(parents=True)
    print(f"\nbrowser test screenshots and logs: {ARTIFACTS}")
    return ARTIFACTS


@pytest.fixture(scope="module")
def lab(tmp_path_factory, artifacts):
    """(base URL, token) of a JupyterLab serving a copy of the notebooks."""
    home = tmp_path_factory.mktemp("lab")
    work = home / "notebooks"
    work.mkdir()
    for path in NOTEBOOKS:
        shutil.copy(path, work / path.name)
    for name, values in SETTINGS.items():
        target = home / "settings" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(values))
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ)
    env.update(
        PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p),
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(home / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"),
    )
    cmd = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={work}",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    log = open(artifacts / "jupyterlab.log", "w")  # noqa: SIM115 - closed below
    server = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=5) as reply:
                if reply.status == 200:
                    break
        except OSError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            log.close()
            pytest.fail(f"JupyterLab did not start; see {artifacts / 'jupyterlab.log'}", pytrace=False)
        time.sleep(0.5)
    yield url, token
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
    log.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not Path(CHROMIUM).is_file():
        _require(
            f"Chromium at {CHROMIUM} (Debian: apt-get install chromium, which .ci/system-deps does; "
            "or set COURSE_NST_CHROMIUM)"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _require("the playwright package (pip install -c requirements/constraints.txt -e '.[dev]')")
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
            device_scale_factor=1,
        )
        yield context
        context.close()


class Student:
    """One notebook open in JupyterLab, and what went wrong in the browser meanwhile."""

    def __init__(self, page, name: str, artifacts: Path):
        self.page, self.name, self.artifacts = page, name, artifacts
        self.console_errors: list[str] = []
        self.shots = 0
        page.on("console", lambda m: m.type == "error" and self.console_errors.append(m.text))
        page.on("pageerror", lambda e: self.console_errors.append(f"page error: {e}"))

    def screenshot(self, step: str, full_page: bool = False) -> Path:
        self.shots += 1
        path = self.artifacts / f"{self.name[:2]}-{self.shots:02d}-{step}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        return path

    def wait_idle(self, timeout_s: float) -> None:
        self.page.locator(".jp-NotebookPanel:visible .jp-Notebook-ExecutionIndicator[data-status='idle']").wait_for(
            timeout=timeout_s * 1000
        )

    def edit_parameters(self, values: dict[str, int]) -> str:
        cell = self.page.locator(".jp-NotebookPanel:visible .jp-CodeCell", has_text="parameters: change these").first
        source = cell.locator(".cm-content").inner_text()
        for name, value in values.items():
            source, n = re.subn(rf"^({name}\s*=\s*)\d+", rf"\g<1>{value}", source, flags=re.M)
            assert n == 1, f"{self.name}: no line `{name} = <number>` in the parameters cell:\n{source}"
        cell.locator(".cm-content").click()
        self.page.keyboard.press("Control+a")
        self.page.keyboard.insert_text(source)
        typed = cell.locator(".cm-content").inner_text()
        assert all(re.search(rf"^{n}\s*=\s*{v}\b", typed, re.M) for n, v in values.items()), typed
        self.page.keyboard.press("Escape")
        return typed

    def menu(self, menu: str, item: str) -> None:
        self.page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(rf"^{menu}$")).click()
        self.page.locator(".lm-Menu-item:visible .lm-Menu-itemLabel", has_text=re.compile(rf"^{item}$")).click()

    def run_all(self, n_code: int) -> None:
        """Edit > Clear Outputs of All Cells, then Run > Run All Cells, and wait until all ``n_code``
        code cells have run (the number from the file: the page's count, taken while it renders,
        can be short or long)."""
        self.menu("Edit", "Clear Outputs of All Cells")
        self.menu("Run", "Run All Cells")
        prompts = self.page.locator(".jp-NotebookPanel:visible .jp-CodeCell .jp-InputPrompt")
        deadline = time.monotonic() + RUN_ALL_TIMEOUT_S
        last_texts: list[str] = []
        done = re.compile(r"^\[\d+\]:$")
        idle_since = None
        while time.monotonic() < deadline:
            texts = [t.strip() for t in prompts.evaluate_all(TEXTS)]  # also of cells out of view
            idle = self.is_idle()
            if len(texts) == n_code and all(done.match(t) for t in texts) and idle:
                return
            # A cell that raised stops Run All: the kernel then stays idle with cells not run. The
            # prompts alone cannot tell that from a finish (cells out of view may show no count),
            # so a stop is an error output together with a kernel idle for STOPPED_IDLE_S.
            idle_since = (idle_since or time.monotonic()) if idle else None
            if idle_since is not None and time.monotonic() - idle_since > STOPPED_IDLE_S and self.error_outputs():
                self.screenshot("stopped")
                pytest.fail(f"{self.name}: Run All Cells stopped at an error: {self.error_outputs()}", pytrace=False)
            time.sleep(1)
            last_texts = texts
        self.screenshot("timeout")
        pytest.fail(
            f"{self.name}: Run All Cells did not finish in {RUN_ALL_TIMEOUT_S} s; prompts {last_texts}, "
            f"idle: {self.is_idle()}",
            pytrace=False,
        )

    def is_idle(self) -> bool:
        indicator = self.page.locator(".jp-NotebookPanel:visible .jp-Notebook-ExecutionIndicator").first
        return indicator.get_attribute("data-status") == "idle"

    def error_outputs(self) -> list[str]:
        """Text of every error, stderr or 'Error displaying widget' output of the notebook."""
        outputs = self.page.locator(
            ".jp-NotebookPanel:visible .jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr'], "
            ".jp-NotebookPanel:visible .jp-OutputArea-output:has-text('Error displaying widget')"
        )
        return [t[:300] for t in outputs.evaluate_all(TEXTS)]


def _image_box(img) -> dict:
    return img.evaluate("""e => { const r = e.getBoundingClientRect();
        return {src: e.src, width: r.width, height: r.height, natural: [e.naturalWidth, e.naturalHeight],
                column: e.closest('.jp-OutputArea-output').getBoundingClientRect().width}; }""")


def _assert_own_size(box: dict, what: str) -> None:
    """Drawn at its natural size, or scaled down to the output column's width (never stretched)."""
    assert box["natural"][0] > 0, f"{what}: the image did not load (a broken icon)"
    width = min(box["natural"][0], box["column"])
    height = box["natural"][1] * width / box["natural"][0]
    assert abs(box["width"] - width) <= 1 and abs(box["height"] - height) <= 1, (
        f"{what}: drawn at {box['width']:.0f}x{box['height']:.0f} px in a {box['column']:.0f} px column, "
        f"its own size is {box['natural'][0]}x{box['natural'][1]} (stretched or squeezed)"
    )


def _operate_unit_browser(student: Student) -> None:
    page = student.page
    widget = page.locator(".jp-NotebookPanel:visible .widget-interact").first
    widget.scroll_into_view_if_needed()
    img = widget.locator("img").first
    img.wait_for()
    before = _image_box(img)
    _assert_own_size(before, "unit browser, as run")
    student.screenshot("unit-browser-before")
    unit = widget.locator("input[type='number']").first
    unit.fill("5")
    unit.press("Enter")
    after = before
    deadline = time.monotonic() + 120  # the Output widget draws the new figure in a new img element
    while after["src"] == before["src"] or not after["natural"][0]:
        assert time.monotonic() < deadline, "the unit browser's figure did not change after choosing unit 5"
        time.sleep(0.5)
        after = _image_box(widget.locator("img").first)
    assert after["src"] != before["src"], "the unit browser's figure did not change"
    _assert_own_size(after, "unit browser, unit 5")
    student.screenshot("unit-browser-unit-5")


def _operate_explorer(student: Student) -> None:
    page = student.page
    explorer = page.locator(".jp-NotebookPanel:visible .widget-vbox", has=page.locator(".widget-image")).first
    explorer.scroll_into_view_if_needed()
    img = explorer.locator("img.widget-image").first
    before = _image_box(img)
    _assert_own_size(before, "explorer, after the notebook's own run")
    assert before["natural"][0] == 320 and before["width"] < before["column"] - 100, (
        f"explorer image {before['width']:.0f} px wide in a {before['column']:.0f} px column: stretched"
    )
    student.screenshot("explorer-before")
    readout = explorer.locator(".widget-slider", has_text="steps").locator(".widget-readout")
    readout.click()
    page.keyboard.press("Control+a")
    page.keyboard.type("10")
    page.keyboard.press("Enter")
    explorer.locator("select").first.select_option("noise")
    page.wait_for_function(
        "([e, old]) => e.src !== old", arg=[img.element_handle(), before["src"]], timeout=30_000
    )  # choosing a start shows that start
    student.screenshot("explorer-start-noise")
    started = _image_box(img)
    explorer.locator("button", has_text="Run").click()
    status = explorer.locator(".widget-html", has_text="done").first
    status.wait_for(timeout=300_000)
    assert "10 steps from noise" in status.inner_text(), status.inner_text()
    after = _image_box(img)
    assert after["src"] not in (before["src"], started["src"]), "the explorer's image did not change"
    _assert_own_size(after, "explorer, after Run")
    assert after["natural"][0] == 320 and abs(after["width"] - 320) <= 1
    student.screenshot("explorer-after-run")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_in_jupyterlab(path, lab, browser, artifacts):
    url, token = lab
    page = browser.new_page()
    page.set_default_timeout(60_000)
    student = Student(page, path.stem, artifacts)
    t0 = time.monotonic()
    try:
        # a workspace of its own: only this notebook open (the other tests' tabs are not restored)
        page.goto(f"{url}/lab/workspaces/{path.stem}/tree/{path.name}?token={token}&reset")
        page.locator(".jp-NotebookPanel:visible .jp-CodeCell").first.wait_for(timeout=120_000)
        student.wait_idle(timeout_s=120)
        student.screenshot("opened")
        student.edit_parameters(SMALLER[path.name[:2]])
        student.screenshot("parameters-edited")
        student.run_all(sum(cell.cell_type == "code" for cell in nbformat.read(path, as_version=4).cells))
        student.screenshot("ran-all")
        errors = student.error_outputs()
        assert not errors, f"{path.name}: error outputs after Run All Cells: {errors}"
        if path.name.startswith("01"):
            _operate_unit_browser(student)
        if path.name.startswith("04"):
            _operate_explorer(student)
        assert not student.error_outputs(), f"{path.name}: error outputs: {student.error_outputs()}"
        assert not student.console_errors, f"{path.name}: browser console errors: {student.console_errors}"
    finally:
        print(f"{path.name}: {time.monotonic() - t0:.0f} s in the browser, {student.shots} screenshots")
        page.close()
