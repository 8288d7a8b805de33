"""course.runtime: the two process settings applied at ``import course``."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from pathlib import Path

import pytest

from course import runtime

ROOT = Path(__file__).resolve().parents[1]


class RecordingMallopt:
    """Stands in for glibc's mallopt: records the calls, answers ``result``."""

    def __init__(self, result: int = 1) -> None:
        self.calls: list[tuple[int, int]] = []
        self.result = result

    def __call__(self, option: int, value: int) -> int:
        self.calls.append((option, value))
        return self.result


def test_sets_the_timeout_and_both_malloc_thresholds() -> None:
    environ: dict[str, str] = {}
    mallopt = RecordingMallopt()
    done = runtime.tune_process(environ, numpy_loaded=False, mallopt=mallopt)
    assert environ == {"OPENBLAS_THREAD_TIMEOUT": "16"}
    # glibc's malloc.h: M_MMAP_THRESHOLD is -3, M_TRIM_THRESHOLD is -1.
    assert sorted(mallopt.calls) == [(-3, 32 * 2**20), (-1, 128 * 2**20)]
    assert done["OPENBLAS_THREAD_TIMEOUT"] == "16 (set before numpy loaded)"
    assert done["malloc"] == "mmap threshold 32 MiB, trim threshold 128 MiB"


def test_keeps_the_users_timeout() -> None:
    environ = {"OPENBLAS_THREAD_TIMEOUT": "22"}
    done = runtime.tune_process(environ, numpy_loaded=False, mallopt=RecordingMallopt())
    assert environ == {"OPENBLAS_THREAD_TIMEOUT": "22"}
    assert done["OPENBLAS_THREAD_TIMEOUT"] == "22 (from the environment)"


def test_says_when_numpy_came_first() -> None:
    environ: dict[str, str] = {}
    done = runtime.tune_process(environ, numpy_loaded=True, mallopt=RecordingMallopt())
    assert environ["OPENBLAS_THREAD_TIMEOUT"] == "16"  # for the processes it starts
    assert "keeps OpenBLAS's default" in done["OPENBLAS_THREAD_TIMEOUT"]


def test_course_tuning_0_turns_both_off() -> None:
    environ = {"COURSE_TUNING": "0"}
    mallopt = RecordingMallopt()
    done = runtime.tune_process(environ, numpy_loaded=False, mallopt=mallopt)
    assert environ == {"COURSE_TUNING": "0"} and mallopt.calls == []
    assert "COURSE_TUNING=0" in done["OPENBLAS_THREAD_TIMEOUT"] and "unchanged" in done["malloc"]


@pytest.mark.parametrize(("mallopt", "said"), [
    (None, "unchanged (not glibc)"), (RecordingMallopt(0), "unchanged (mallopt refused)")])
def test_says_when_malloc_is_left_alone(mallopt: RecordingMallopt | None, said: str) -> None:
    assert runtime.tune_process({}, numpy_loaded=False, mallopt=mallopt)["malloc"] == said


@pytest.mark.skipif(sys.platform != "linux" or platform.libc_ver()[0] != "glibc",
                    reason="mallopt is glibc's")
def test_import_course_tunes_this_process() -> None:
    assert runtime.TUNING["malloc"] == "mmap threshold 32 MiB, trim threshold 128 MiB"


def test_import_course_before_numpy_sets_the_timeout_for_openblas() -> None:
    env = {k: v for k, v in os.environ.items()
           if k not in {"OPENBLAS_THREAD_TIMEOUT", "COURSE_TUNING"}}
    code = ("import os, course; print(os.environ['OPENBLAS_THREAD_TIMEOUT']);"
            "print(course.runtime.TUNING['OPENBLAS_THREAD_TIMEOUT'])")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                            capture_output=True, text=True, check=True)
    assert result.stdout.splitlines() == ["16", "16 (set before numpy loaded)"]


def test_the_makefile_exports_the_same_timeout() -> None:
    makefile = (ROOT / "Makefile").read_text()
    exported = re.findall(r"^export OPENBLAS_THREAD_TIMEOUT \?= (\S+)$", makefile, re.MULTILINE)
    assert exported == [runtime.THREAD_TIMEOUT]
