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


@pytest.mark.parametrize("switch", ["0", "off", " False ", "NO"])
def test_course_tuning_off_turns_both_off(switch: str) -> None:
    environ = {"COURSE_TUNING": switch}
    mallopt = RecordingMallopt()
    done = runtime.tune_process(environ, numpy_loaded=False, mallopt=mallopt)
    assert environ == {"COURSE_TUNING": switch} and mallopt.calls == []
    said = f"COURSE_TUNING={switch.strip()}"
    assert said in done["OPENBLAS_THREAD_TIMEOUT"] and said in done["malloc"]


def test_says_which_threshold_mallopt_took() -> None:
    def refuses_trim(option: int, value: int) -> int:
        return int(option != runtime.M_TRIM_THRESHOLD)

    done = runtime.tune_process({}, numpy_loaded=False, mallopt=refuses_trim)
    assert done["malloc"] == "mmap threshold 32 MiB"


def test_any_other_course_tuning_value_tunes() -> None:
    environ = {"COURSE_TUNING": "1"}
    runtime.tune_process(environ, numpy_loaded=False, mallopt=RecordingMallopt())
    assert environ["OPENBLAS_THREAD_TIMEOUT"] == runtime.THREAD_TIMEOUT


@pytest.mark.parametrize(("switch", "exported"), [("", True), ("1", True), ("0", False),
                                                  ("off", False), ("No", False)])
def test_the_makefile_agrees_on_course_tuning(switch: str, exported: bool) -> None:
    env = {k: v for k, v in os.environ.items()
           if k not in {"OPENBLAS_THREAD_TIMEOUT", "COURSE_TUNING", "MAKEFLAGS", "MAKELEVEL"}}
    env["COURSE_TUNING"] = switch
    # make -p prints the variables it ends up with, without running a target.
    result = subprocess.run(["make", "-p", "-q", "-f", "Makefile", "help"], cwd=ROOT, env=env,
                            capture_output=True, text=True)
    lines = re.findall(r"^OPENBLAS_THREAD_TIMEOUT = (\S+)$", result.stdout, re.MULTILINE)
    assert lines == ([runtime.THREAD_TIMEOUT] if exported else [])
    assert (runtime.tune_process({"COURSE_TUNING": switch}, numpy_loaded=False,
                                 mallopt=None)["OPENBLAS_THREAD_TIMEOUT"]
            .startswith(runtime.THREAD_TIMEOUT)) == exported


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
