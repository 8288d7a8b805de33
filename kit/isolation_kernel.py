"""A pytest plugin for nbval runs: the kernel starts inside the isolation sandbox.

nbval (and with it the grader's report hook and its signed records) stays outside the
sandbox; only the kernel, which runs the student's code, is inside. They talk over
Jupyter's ``ipc`` transport: unix sockets in a folder bound into the sandbox at the same
path, so no network is needed (the sandbox has none).

``kit.isolation.isolated_kernel`` copies this file into the nbval run's control folder
(on its ``PYTHONPATH``; this module must import nothing of the kit) and writes the
settings it reads from the file named by ``KIT_ISOLATED_KERNEL``: ``prefix`` (the argv
that starts a command inside the sandbox) and ``ipc_dir``. Load it with
``-p isolation_kernel``. It replaces the ``KernelManager`` nbval uses with one that:

* uses the ``ipc`` transport with its sockets and connection file in ``ipc_dir``;
* puts ``prefix`` before the kernel's command (jupyter_client then starts the sandbox
  directly, without a shell, and watches that process: a dead sandbox is a dead kernel);
* interrupts by message (``interrupt_mode = "message"``): a signal sent to the sandbox's
  outer process would not reach the kernel in its own pid namespace, while ipykernel
  answers ``interrupt_request`` on its control channel.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import pytest


def isolated_manager(base: type, prefix: list[str], ipc_dir: Path) -> type:
    """A subclass of the KernelManager ``base`` that starts kernels inside the sandbox."""

    class IsolatedKernelManager(base):  # type: ignore[misc, valid-type]
        def __init__(self, **kwargs: Any) -> None:
            name = f"kernel-{uuid.uuid4().hex[:12]}"
            kwargs.setdefault("transport", "ipc")
            kwargs.setdefault("ip", str(ipc_dir / name))
            super().__init__(**kwargs)
            self.connection_file = str(ipc_dir / f"{name}.json")

        @property
        def kernel_spec(self) -> Any:
            spec = super().kernel_spec
            if spec is not None:
                spec.interrupt_mode = "message"
            return spec

        def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
            return [*prefix, *super().format_kernel_cmd(extra_arguments)]

    return IsolatedKernelManager


def pytest_configure(config: pytest.Config) -> None:
    path = os.environ.pop("KIT_ISOLATED_KERNEL", "")
    if not path:
        raise pytest.UsageError("isolation_kernel: KIT_ISOLATED_KERNEL names no settings file")
    settings = json.loads(Path(path).read_text(encoding="utf-8"))
    import nbval.kernel

    nbval.kernel.KernelManager = isolated_manager(
        nbval.kernel.KernelManager, list(settings["prefix"]), Path(settings["ipc_dir"]))
