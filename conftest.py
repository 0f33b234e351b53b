"""pytest settings for the whole repository (tests/ and, with --nbval, notebooks/)."""

from __future__ import annotations

# nbval starts one Jupyter kernel per notebook; its default 60 s to start one is too short on a
# busy CI machine (importing torch alone can take tens of seconds there). Raised unless the
# command line sets it. (Cells have nbval's --nbval-cell-timeout, 2000 s by default.)
KERNEL_STARTUP_TIMEOUT = 300


def pytest_configure(config):
    option = config.option
    if getattr(option, "nbval_kernel_startup_timeout", None) == 60:
        option.nbval_kernel_startup_timeout = KERNEL_STARTUP_TIMEOUT
