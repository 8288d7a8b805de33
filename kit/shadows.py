"""Find second implementations of task functions in the tests that ship to students.

A shipped test file must not contain another way to compute what a task's solution
computes (a loop-based ``affine_forward`` "reference" is the answer, readable by any
student). This check imports every shipped test module of a tree, takes each top-level
function that could be called like a task function (same number of positional
arguments), calls it on the inputs the task function gets, and reports it when it
returns what the solution returns on every sample, as an array that is not simply one
of the inputs. Used by the safety suite (``tests/safety/test_safety_shadows.py``), so
``make test`` fails when such a function appears.

Inputs come from the layer registry (``tests/layer_registry.py``: every layer task with
its input strategy; a backward task gets ``(dout, cache)`` from the solution's forward),
from ``OPTIM_TASKS`` for the update rules, and from a small random network for
``FullyConnectedNet.loss`` (a candidate ``f(model, X)``). Tasks without a recipe are
listed as unchecked.
"""

from __future__ import annotations

import ast
import contextlib
import copy
import importlib.util
import inspect
import os
import sys
import tempfile
import uuid
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kit.markers import parse_python
from kit.tree import is_instructor_only, load_task_table

SAMPLES = 3  # a candidate must agree with the solution on every one of these
OPTIM_TASKS = ("sgd_momentum", "rmsprop", "adam", "adagrad")
# Parameters whose annotation names one of these are never arrays: not a candidate
# (and calling it could touch files or start processes).
_NOT_ARRAY_ANNOTATIONS = ("Path", "str", "Popen", "subprocess", "dict[str, str]")


@dataclass(frozen=True)
class Recipe:
    """How to call one task function: its name, task ID and sample argument tuples."""

    task_id: str
    name: str
    function: Callable[..., Any]
    samples: list[tuple[Any, ...]]
    # How one sample is run (the same way for the solution and a candidate).
    runner: Callable[[Callable[..., Any], tuple[Any, ...]], Any] = lambda f, args: f(*args)


@dataclass(frozen=True)
class Shadow:
    """A shipped function that computes what a task's solution computes."""

    path: str
    function: str
    task_id: str
    task_function: str

    def __str__(self) -> str:
        return (f"{self.path}: {self.function}() computes what {self.task_function} "
                f"(task {self.task_id}) computes; move it to an instructor-only test "
                "under tests/kit/")


def shipped_test_files(root: Path) -> list[Path]:
    """The ``.py`` files under ``root/tests`` that the student release ships."""
    tests = root / "tests"
    return sorted(path for path in tests.rglob("*.py")
                  if not is_instructor_only(path.relative_to(root).as_posix())
                  and "__pycache__" not in path.parts)


def candidates(path: Path) -> list[tuple[str, int, int]]:
    """(name, required positional args, all positional args) of the plain top-level
    functions of a file: not tests, not decorated (fixtures, strategies), not private
    ones taking non-array annotations."""
    tree = parse_python(path.read_text(encoding="utf-8"))
    found = []
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef) or node.name.startswith("test_"):
            continue
        if node.decorator_list:
            continue
        args = [*node.args.posonlyargs, *node.args.args]
        if any(arg.annotation is not None and any(
                word in ast.unparse(arg.annotation) for word in _NOT_ARRAY_ANNOTATIONS)
               for arg in args):
            continue
        found.append((node.name, len(args) - len(node.args.defaults), len(args)))
    return found


def recipes(root: Path, tasks: dict[str, Any]) -> tuple[list[Recipe], list[str]]:
    """Sample calls for every task function we can feed; and the task IDs we cannot."""
    by_name = {task.function: task_id for task_id, task in tasks.items()}
    made: dict[str, Recipe] = {}
    for recipe in [*_layer_recipes(root, by_name), *_optim_recipes(by_name),
                   *_network_recipes(by_name)]:
        made.setdefault(recipe.name, recipe)
    covered = {recipe.task_id for recipe in made.values()}
    unchecked = [task_id for task_id, task in tasks.items()
                 if task_id not in covered and getattr(task, "checked_by", "pytest") == "pytest"]
    return list(made.values()), unchecked


def _layer_recipes(root: Path, by_name: dict[str, str]) -> Iterable[Recipe]:
    registry = _import(root / "tests" / "layer_registry.py")
    for case in registry.LAYERS:
        forward_name = getattr(case.forward, "__name__", "")
        samples = _examples(case.inputs)
        if case.forward_task and forward_name in by_name:
            yield Recipe(case.forward_task, forward_name, case.forward,
                         [_positional(case.forward, s) for s in samples])
        backward_name = getattr(case.backward, "__name__", "")
        if case.backward is not None and case.backward_task and backward_name in by_name:
            calls = []
            for index, sample in enumerate(samples):
                out, cache = case.forward(**copy.deepcopy(sample))
                dout = np.random.default_rng(index).standard_normal(np.shape(out))
                calls.append((dout, cache))
            yield Recipe(case.backward_task, backward_name, case.backward, calls)


def _optim_recipes(by_name: dict[str, str]) -> Iterable[Recipe]:
    from course import optim

    for name in OPTIM_TASKS:
        if name not in by_name:
            continue
        rng = np.random.default_rng(len(name))
        calls = [(rng.standard_normal((3, 4)), rng.standard_normal((3, 4)),
                  {"learning_rate": 1e-2}) for _ in range(SAMPLES)]
        yield Recipe(by_name[name], name, getattr(optim, name), calls, _three_steps)


def _three_steps(rule: Callable[..., Any], args: tuple[Any, ...]) -> np.ndarray:
    """Three steps of an update rule, its config fed back: rules that agree only on a
    first step from zero state (plain SGD and momentum do) are told apart."""
    w, dw, config = args
    path = []
    for step in range(3):
        w, config = rule(w, dw * (step + 1), config)
        path.append(np.asarray(w))
    return np.stack(path)


def _network_recipes(by_name: dict[str, str]) -> Iterable[Recipe]:
    if "FullyConnectedNet.loss" not in by_name:
        return
    from course.classifiers.fc_net import FullyConnectedNet

    calls = []
    for seed in range(SAMPLES):
        model = FullyConnectedNet([5, 4][: seed % 2 + 1], input_dim=6, num_classes=3,
                                  dtype=np.float64, seed=seed, weight_scale="he")
        rng = np.random.default_rng(seed)
        for name, value in model.params.items():
            if name.startswith("b"):
                value[...] = rng.normal(0, 0.5, size=value.shape)
        calls.append((model, rng.standard_normal((4, 6))))

    def scores(model: Any, X: np.ndarray) -> Any:
        return model.loss(X)

    yield Recipe(by_name["FullyConnectedNet.loss"], "FullyConnectedNet.loss", scores, calls)


def find_shadows(root: Path, files: Iterable[Path] | None = None,
                 tasks: dict[str, Any] | None = None) -> tuple[list[Shadow], list[str]]:
    """Every shadow implementation in ``files`` (default: the shipped tests of ``root``);
    and the task IDs that could not be checked (no input recipe).

    ``root`` is the solution tree whose ``course`` package is importable (the kit's own).
    """
    if tasks is None:
        tasks = dict(load_task_table(root))
    with _tests_on_path(root):
        known, unchecked = recipes(root, tasks)
        shadows = []
        for path in files if files is not None else shipped_test_files(root):
            module = None
            for name, required, total in candidates(path):
                for recipe in known:
                    arity = len(recipe.samples[0])
                    if not required <= arity <= total:
                        continue
                    module = module or _import(path)
                    candidate = getattr(module, name, None)
                    if callable(candidate) and _agrees(candidate, recipe):
                        rel = os.path.relpath(path, root) if path.is_relative_to(root) \
                            else str(path)
                        shadows.append(Shadow(Path(rel).as_posix(), name, recipe.task_id,
                                              recipe.name))
    return shadows, unchecked


def _agrees(candidate: Callable[..., Any], recipe: Recipe) -> bool:
    """True if the candidate returns a solution output on every sample."""
    for args in recipe.samples:
        expected = recipe.runner(recipe.function, copy.deepcopy(args))
        try:
            with _quiet_sandbox():
                got = recipe.runner(candidate, copy.deepcopy(args))
        except Exception:
            return False
        if not _shares_an_output(got, expected, args):
            return False
    return True


def _shares_an_output(got: Any, expected: Any, args: tuple[Any, ...]) -> bool:
    inputs = [a for a in _numeric_values(args)]
    for value in _numeric_values(got):
        if any(_same(value, arg) for arg in inputs):
            continue  # handing back an input computes nothing
        if any(_same(value, target) for target in _numeric_values(expected)):
            return True
    return False


def _numeric_values(obj: Any) -> list[np.ndarray]:
    items = obj if isinstance(obj, tuple | list) else (obj,)
    values = []
    for item in items:
        if isinstance(item, np.ndarray | float | int | np.floating | np.integer) \
                and not isinstance(item, bool):
            array = np.asarray(item)
            if array.dtype.kind in "iuf":
                values.append(array.astype(np.float64))
    return values


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=1e-6, atol=1e-9))


def _examples(strategy: Any) -> list[Any]:
    """SAMPLES draws of a hypothesis strategy, the same on every run (derandomized):
    the largest of the first few dozen, since the first draws are tiny and degenerate
    (a ReLU input with no negative entry cannot tell ReLU from the identity)."""
    from hypothesis import HealthCheck, Phase, given, settings

    drawn: list[Any] = []

    @settings(derandomize=True, max_examples=40, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck), deadline=None)
    @given(strategy)
    def collect(value: Any) -> None:
        drawn.append(copy.deepcopy(value))

    collect()
    return sorted(drawn, key=_size, reverse=True)[:SAMPLES]


def _size(value: Any) -> int:
    arrays = value.values() if isinstance(value, dict) else [value]
    return sum(np.size(a) for a in arrays if isinstance(a, np.ndarray))


def _positional(function: Callable[..., Any], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    names = list(inspect.signature(function).parameters)
    return tuple(kwargs[name] for name in names if name in kwargs)


def _import(path: Path) -> Any:
    name = f"_kit_shadows_{path.stem}_{uuid.uuid4().hex[:8]}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def _tests_on_path(root: Path) -> Any:
    # Shipped tests import their helpers (layer_registry, cifar_fixture) by name.
    tests = str(root / "tests")
    sys.path.insert(0, tests)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(tests)


@contextlib.contextmanager
def _quiet_sandbox() -> Any:
    """Run a candidate in an empty temp folder, warnings and numpy errors silenced."""
    here = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="kit-shadows-") as tmp, \
            warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        os.chdir(tmp)
        try:
            yield
        finally:
            os.chdir(here)
