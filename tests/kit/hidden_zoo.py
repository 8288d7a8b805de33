"""The cheat zoo and the subtle-bug zoo of the hidden checks, built from the solution tree.

Every submission here is a copy of the solution's ``course/`` (and notebooks) in which the
solution region of a few tasks is replaced by a cheat or edited by a one-line bug. Built
at test time, so no copy of solution code is committed, and a replacement whose target is
gone fails loudly instead of testing nothing.

Cheats (each fakes the tasks in ``CHEATS[name].tasks``, and nothing else):

* ``patches-check-helpers``: returns zeros and, when called, rebinds the notebook's
  ``check_close``, ``check_gradient``, ``check_true`` and ``report_check`` (in the frame
  that called it) to functions that print ``check passed: ...``;
* ``reads-caller-frame``: returns the ``expected`` array it finds in a calling frame;
* ``looks-up-public-inputs``: recognises the notebooks' check inputs and returns their
  answers, zeros for anything else;
* ``returns-ndarray-subclass``: returns an ndarray subclass of zeros that says it equals
  anything;
* ``returns-custom-eq-object``: returns an object whose ``__eq__`` is always true;
* ``returns-object-array``: returns an object-dtype array whose entries claim to equal
  anything (as floats they are the right values' negatives);
* ``calls-the-fast-layers``: the naive conv and pool layers (4.1 to 4.4) call the given
  fast layers, four ways (an import, the module, a helper, importlib): right values,
  caught by ``course.own_work``'s reading of the source.
* ``hides-the-fast-layers``: the same four tasks reach the fast layers in ways that
  reading misses (the module's name built from pieces, a module-level binding, the
  names ``course.layer_utils`` re-exports): caught only when the naive layers run with
  the stand-in that refuses every call (``kit.hidden.run.without_given_layers``).
* ``skips-the-closed-form`` and ``skips-the-graph``: batchnorm's closed-form backward
  pass (2.3) returns the graph one's result, looked up through ``globals()``, and the
  graph one (2.2) the closed form's, through a module-level alias: right values, caught
  when each runs with the other's body refusing (``kit.hidden.run.without_other_task``).

Subtle bugs (``SUBTLE_BUGS``): one-line edits inside one task's solution region, each
wrong where the notebooks never look (ReLU's kink, reg > 0 in the net's loss, pad = 0)
or where they do (the grading zoo's three).

Instructor-only (tests/kit/ is not released).
"""

from __future__ import annotations

import shutil
import textwrap
from dataclasses import dataclass
from pathlib import Path

from course.tasks import TASKS_BY_ID
from kit import markers

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Cheat:
    """A cheat: the tasks it fakes, and for each the code that replaces its region."""

    tasks: tuple[str, ...]
    regions: dict[str, str]  # task ID -> replacement body (unindented)
    helpers: dict[str, str]  # file -> module-level code appended to it


def copy_solution(base: Path, name: str, root: Path = ROOT) -> Path:
    """A submission folder holding the solution's course/ and notebooks."""
    sub = base / name
    shutil.copytree(root / "course", sub / "course",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(root / "notebooks", sub / "notebooks",
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    return sub


def _region(path: Path, task_id: str) -> tuple[list[str], markers.Region]:
    """The file's lines and the solution region of ``task_id`` in it (exactly one)."""
    text = path.read_text()
    found = [region for region in markers.regions(markers.parse(text, path.name, TASKS_BY_ID))
             if region.task_id == task_id]
    assert len(found) == 1, f"{path.name}: {len(found)} regions of task {task_id}"
    return text.splitlines(keepends=True), found[0]


def region_body(path: Path, task_id: str) -> str:
    """The code between a task's markers, as it is in the file (indented)."""
    return _region(path, task_id)[1].body


def replace_region(path: Path, task_id: str, body: str) -> None:
    """Replace the code between a task's markers by ``body`` (indented like the markers)."""
    lines, region = _region(path, task_id)
    begin, end = region.line, region.line + len(markers.split_lines(region.body))
    new = textwrap.indent(textwrap.dedent(body).strip("\n") + "\n", region.indent)
    path.write_text("".join(lines[:begin]) + new + "".join(lines[end:]))


def edit_region(path: Path, task_id: str, old: str, new: str) -> None:
    """Replace ``old``, which must occur exactly once in the task's region, by ``new``."""
    lines, region = _region(path, task_id)
    assert region.body.count(old) == 1, \
        f"task {task_id}: {old!r} found {region.body.count(old)} times"
    begin, end = region.line, region.line + len(markers.split_lines(region.body))
    path.write_text("".join(lines[:begin]) + region.body.replace(old, new)
                    + "".join(lines[end:]))


# ---------------------------------------------------------------------------------------
# Cheats
# ---------------------------------------------------------------------------------------

# Rebinds the check helpers wherever a calling frame's globals hold them (the notebook's
# namespace), so every later check line of the cell prints a pass.
FORGE_CHECKS = '''

def _forge_checks():
    import sys as _sys

    # They return None: a cell ending in a check then displays nothing, as the real
    # helpers' results do.
    def check_close(name, actual, expected, threshold=1e-7):
        print(f"check passed: {name}, relative error below {threshold:.0e}")

    def check_gradient(name, f, x, analytic, dout=None, threshold=1e-7, h=1e-5):
        check_close(name, analytic, analytic, threshold)

    def check_true(name, ok, detail):
        print(f"check passed: {name}")

    def report_check(name, value, threshold, measure="relative error"):
        print(f"check passed: {name}, {measure} below {threshold:.0e}")

    frame = _sys._getframe(1)
    while frame is not None:
        names = frame.f_globals
        if "check_close" in names and not names.get("__name__", "").startswith("course"):
            names.update(check_close=check_close, check_gradient=check_gradient,
                         check_true=check_true, report_check=report_check)
        frame = frame.f_back
'''

# The first ``expected`` found in a calling frame (locals, then globals).
FRAME_READER = '''

def _caller_expected(default):
    import sys as _sys

    frame = _sys._getframe(1)
    while frame is not None:
        for scope in (frame.f_locals, frame.f_globals):
            found = scope.get("expected")
            if found is not None and not callable(found):
                return found
        frame = frame.f_back
    return default
'''

# Answers for the notebooks' own check inputs, zeros otherwise.
PUBLIC_LOOKUP = '''

_PUBLIC_AFFINE_X = np.arange(12, dtype=float).reshape(2, 3, 2)
_PUBLIC_RELU_X = np.array([[-2.0, -0.5, 0.0], [0.5, 2.0, 3.0]])


def _known(x, public):
    return np.shape(x) == public.shape and np.array_equal(x, public)
'''

PUBLIC_LOOKUP_OPTIM = '''

_PUBLIC_ADAM = {(1.0, 2.0): (0.9, 2.1), (0.9, 2.1): (0.8, 2.2)}
'''

LIARS = '''

class _AlwaysEqualArray(np.ndarray):
    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False


class _AlwaysEqual:
    def __init__(self, value=0.0):
        self.value = value

    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    def __float__(self):
        return -self.value

    def __hash__(self):
        return 0
'''

# A helper of the same file that calls the fast pool: reached through the task's call.
FAST_POOL_HELPER = """

def _pool_forward(x, pool_param):
    from course.fast_layers import max_pool_forward_fast

    return max_pool_forward_fast(x, pool_param)[0]
"""

# Bound when course.layers is imported: a module-level name, not a function it calls.
HIDDEN_FAST_MODULE = """

_QUICK = __import__("importlib").import_module("course." + "fast" + "_layers")
"""

CHEATS: dict[str, Cheat] = {
    "patches-check-helpers": Cheat(
        tasks=("1.1", "1.3", "1.12"),
        regions={
            "1.1": "out = np.zeros((N, w.shape[1]))\n_forge_checks()\n",
            "1.3": "out = np.zeros_like(x)\n_forge_checks()\n",
            "1.12": "import course.layers as _layers\n\n"
                    "t = t + 1\nnext_w = np.zeros_like(w)\n_layers._forge_checks()\n",
        },
        helpers={"course/layers.py": FORGE_CHECKS},
    ),
    "reads-caller-frame": Cheat(
        tasks=("1.1",),
        regions={"1.1": "out = _caller_expected(np.zeros((N, w.shape[1])))\n"},
        helpers={"course/layers.py": FRAME_READER},
    ),
    "looks-up-public-inputs": Cheat(
        tasks=("1.1", "1.3", "1.12"),
        regions={
            "1.1": "out = np.zeros((N, w.shape[1]))\n"
                   "if _known(x, _PUBLIC_AFFINE_X):\n"
                   "    out = np.array([[16.0, -4.0], [52.0, -4.0]])\n",
            "1.3": "out = np.zeros_like(x)\n"
                   "if _known(x, _PUBLIC_RELU_X):\n"
                   "    out = np.array([[0.0, 0.0, 0.0], [0.5, 2.0, 3.0]])\n",
            "1.12": "t = t + 1\n"
                    "known = _PUBLIC_ADAM.get(tuple(np.ravel(w).tolist()))\n"
                    "next_w = np.zeros_like(w) if known is None else np.array(known)\n",
        },
        helpers={"course/layers.py": PUBLIC_LOOKUP, "course/optim.py": PUBLIC_LOOKUP_OPTIM},
    ),
    "returns-ndarray-subclass": Cheat(
        tasks=("1.3",),
        regions={"1.3": "out = np.zeros(x.shape).view(_AlwaysEqualArray)\n"},
        helpers={"course/layers.py": LIARS},
    ),
    "returns-custom-eq-object": Cheat(
        tasks=("1.1",),
        regions={"1.1": "out = _AlwaysEqual()\n"},
        helpers={"course/layers.py": LIARS},
    ),
    "calls-the-fast-layers": Cheat(
        tasks=("4.1", "4.2", "4.3", "4.4"),
        regions={
            "4.1": "from course.fast_layers import conv_forward_fast\n\n"
                   "out, _ = conv_forward_fast(x, w, b, conv_param)\n",
            "4.2": "from course import fast_layers as _fast\n\n"
                   "dx, dw, db = _fast.conv_backward_fast(dout, cache)\n",
            "4.3": "out = _pool_forward(x, pool_param)\n",
            "4.4": "import importlib\n\n"
                   "dx = importlib.import_module('course.fast_layers')"
                   ".max_pool_backward_fast(dout, cache)\n",
        },
        helpers={"course/layers.py": FAST_POOL_HELPER},
    ),
    "hides-the-fast-layers": Cheat(
        tasks=("4.1", "4.2", "4.3", "4.4"),
        regions={
            "4.1": "import importlib\n\n"
                   "_module = importlib.import_module('course.' + 'fast' + '_layers')\n"
                   "out, _ = getattr(_module, 'conv_forward_' + 'fast')(x, w, b, conv_param)\n",
            "4.2": "_package = __import__('course', fromlist=['fast' + '_layers'])\n"
                   "dx, dw, db = vars(_package)['fast' + '_layers']"
                   ".conv_backward_fast(dout, cache)\n",
            "4.3": "out = _QUICK.max_pool_forward_fast(x, pool_param)[0]\n",
            "4.4": "from course.layer_utils import max_pool_backward_fast as _backward\n\n"
                   "dx = _backward(dout, cache)\n",
        },
        helpers={"course/layers.py": HIDDEN_FAST_MODULE},
    ),
    "skips-the-closed-form": Cheat(
        tasks=("2.3",),
        regions={"2.3": "dx, dgamma, dbeta = globals()['batchnorm_' + 'backward'](dout, cache)\n"},
        helpers={},
    ),
    "skips-the-graph": Cheat(
        tasks=("2.2",),
        regions={"2.2": "dx, dgamma, dbeta = _CLOSED_FORM(dout, cache)\n"},
        helpers={"course/layers.py": "\n\n_CLOSED_FORM = batchnorm_backward_alt\n"},
    ),
    "returns-object-array": Cheat(
        tasks=("1.3",),
        regions={"1.3": "out = np.empty(x.shape, dtype=object)\n"
                        "for _i, _v in np.ndenumerate(x):\n"
                        "    out[_i] = _AlwaysEqual(max(float(_v), 0.0))\n"},
        helpers={"course/layers.py": LIARS},
    ),
}

# Where each task's region lives (the cheats only fake tasks of these two files).
TASK_FILES = {"1.1": "course/layers.py", "1.3": "course/layers.py", "1.12": "course/optim.py",
              **{task: "course/layers.py" for task in ("2.2", "2.3", "4.1", "4.2", "4.3", "4.4")}}


def build_cheat(base: Path, name: str, root: Path = ROOT) -> Path:
    """The submission of one cheat: the solution, with the cheat's regions and helpers."""
    cheat = CHEATS[name]
    sub = copy_solution(base, name, root)
    for rel, code in cheat.helpers.items():
        with (sub / rel).open("a") as handle:
            handle.write(code)
    for task_id, body in cheat.regions.items():
        replace_region(sub / TASK_FILES[task_id], task_id, body)
    return sub


# ---------------------------------------------------------------------------------------
# Subtle bugs: (file, task, old, new) edits inside one region
# ---------------------------------------------------------------------------------------

SUBTLE_BUGS: dict[str, list[tuple[str, str, str, str]]] = {
    # From the trusted-verdict issue: three bugs the notebooks' checks do not reach.
    "relu-backward-at-zero": [
        ("course/layers.py", "1.4", "dout * (x > 0)", "dout * (x >= 0)")],
    "net-loss-without-reg": [
        ("course/classifiers/fc_net.py", "1.8",
         "loss += 0.5 * self.reg * float(np.sum(W * W))", "loss += 0.0"),
        ("course/classifiers/fc_net.py", "1.8",
         'grads[f"W{i}"] = grads[f"W{i}"] + self.reg * W', 'grads[f"W{i}"] = grads[f"W{i}"]')],
    "conv-backward-crop-pad": [
        ("course/layers.py", "4.2", "dx_pad[:, :, pad:pad + x.shape[2], pad:pad + x.shape[3]]",
         "dx_pad[:, :, pad:-pad, pad:-pad]")],
    # The grading zoo's three (tests/kit/test_grade_zoo.py), which the notebooks catch.
    "batchnorm-test-sqrt-var-plus-eps": [
        ("course/layers.py", "2.1", "np.sqrt(running_var + eps)", "(np.sqrt(running_var) + eps)")],
    "dropout-without-1-over-p": [
        ("course/layers.py", "3.1", "((rng.random(x.shape) < p) / p)",
         "(rng.random(x.shape) < p)")],
    "conv-ignores-stride": [
        ("course/layers.py", "4.1", "top = i * stride", "top = i * 1"),
        ("course/layers.py", "4.1", "left = j * stride", "left = j * 1")],
}


def bug_tasks(name: str) -> set[str]:
    """The tasks a subtle bug edits."""
    return {task for _, task, _, _ in SUBTLE_BUGS[name]}


def build_bug(base: Path, name: str, root: Path = ROOT) -> Path:
    sub = copy_solution(base, name, root)
    for rel, task_id, old, new in SUBTLE_BUGS[name]:
        edit_region(sub / rel, task_id, old, new)
    return sub


def build_all_bugs_in_one(base: Path, name: str, bugs: list[str], root: Path = ROOT) -> Path:
    """One submission with several subtle bugs at once (the issue's 'three bugs')."""
    sub = copy_solution(base, name, root)
    for bug in bugs:
        for rel, task_id, old, new in SUBTLE_BUGS[bug]:
            edit_region(sub / rel, task_id, old, new)
    return sub
