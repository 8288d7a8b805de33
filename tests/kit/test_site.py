"""The site builder executes notebooks, renders them and links them from an index page."""

import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest

from course.tasks import NOTEBOOKS, TASKS
from kit import site, site_render

REPO = Path(__file__).resolve().parents[2]


def _notebook(path: Path, *sources: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# demo")] + [
        nbformat.v4.new_code_cell(src) for src in sources
    ]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)


def _run_site(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "kit", "site", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
    )


@pytest.mark.slow
def test_site_executes_renders_and_indexes(tmp_path):
    src = tmp_path / "nbs"
    src.mkdir()
    _notebook(src / "Good.ipynb", "print(6 * 7)")
    _notebook(
        src / "Broken.ipynb",
        "print('before')",
        "raise RuntimeError('boom in cell 2')",
        "print('never')",
    )
    out = tmp_path / "site"

    result = _run_site("--notebooks", str(src), "--out", str(out))

    # One notebook failed, so the command fails, but both are written and indexed.
    assert result.returncode == 1, result.stdout + result.stderr
    assert "[1/2] Broken.ipynb: FAILED: RuntimeError: boom in cell 2" in result.stdout
    assert "[2/2] Good.ipynb: done" in result.stdout
    executed = nbformat.read(out / "Good.ipynb", as_version=4)
    assert executed.cells[1].outputs[0]["text"] == "42\n"
    assert "execution" not in executed.cells[1].metadata  # volatile timings stripped
    broken = nbformat.read(out / "Broken.ipynb", as_version=4)
    assert broken.cells[2].outputs[0]["ename"] == "RuntimeError"
    assert broken.cells[3].outputs == []  # execution stopped at the error
    assert "42" in (out / "Good.html").read_text()
    index = (out / "index.html").read_text()
    assert '<a href="Good.html">demo</a>' in index  # the notebook's own title
    assert re.search(r"stopped with an error after \d+ s: RuntimeError: boom in cell 2", index)


@pytest.mark.slow
def test_site_in_place_rewrites_the_notebook(tmp_path):
    _notebook(tmp_path / "Only.ipynb", "print('fresh output')")
    result = _run_site("--notebooks", str(tmp_path), "--in-place")
    assert result.returncode == 0, result.stderr
    nb = nbformat.read(tmp_path / "Only.ipynb", as_version=4)
    assert nb.cells[1].outputs[0]["text"] == "fresh output\n"
    assert nb.cells[1].execution_count == 1


def test_site_rejects_an_unknown_notebook_name(tmp_path):
    _notebook(tmp_path / "Only.ipynb", "1")
    result = _run_site(
        "--notebooks", str(tmp_path), "--only", "Missing", "--out", str(tmp_path / "o")
    )
    assert result.returncode == 2
    assert "--only: no notebook named Missing" in result.stderr


# -- rendering, without executing anything ----------------------------------------------


def test_math_is_found_in_prose_and_left_alone_in_code():
    formulas: list[tuple[str, bool]] = []
    text = "Cost $\\$5$ is $a_1$; `$x$` stays.\n\n```\n$$no$$\n```\n\n$$\n\\frac{1}{2}\n$$"
    out = site_render.extract_math(text, formulas)
    assert formulas == [("a_1", False), ("\\frac{1}{2}", True)]
    assert "`$x$`" in out and "$$no$$" in out  # code spans and fences untouched
    assert "$a_1$" not in out and "\\frac" not in out


def test_formulas_become_mathml_and_unknown_commands_are_refused():
    block = site_render.tex_to_mathml("\\frac{a}{b}", display=True)
    assert block.startswith('<math alttext="\\frac{a}{b}"') and 'display="block"' in block
    assert "<mfrac>" in block
    with pytest.raises(site_render.MathError, match="unknown command \\\\nosuchmacro"):
        site_render.tex_to_mathml("\\nosuchmacro x", display=False)


def test_a_function_name_is_set_apart_from_its_argument_but_not_from_a_bracket():
    thin = '<mspace width="0.1667em"></mspace>'
    applied = site_render.tex_to_mathml("\\log p", display=False)
    assert f"<mi>log</mi>{thin}<mi>p</mi>" in applied  # not drawn as "logp"
    bracketed = site_render.tex_to_mathml("\\log(x) + \\exp", display=False)
    assert "mspace" not in bracketed  # "(" and the end of the formula bring their own


def test_tex_escapes_in_text_become_characters_and_other_commands_there_are_refused():
    pool = site_render.tex_to_mathml("H - \\text{pool\\_height}", display=False)
    assert "<mtext>pool_height</mtext>" in pool and "\\_" not in pool.split(">", 1)[1]
    escapes = site_render.tex_to_mathml("\\text{5\\% \\& \\# \\$}", display=False)
    assert "5%&#x000A0;&amp;&#x000A0;#&#x000A0;$</mtext>" in escapes
    with pytest.raises(site_render.MathError, match="unknown command \\\\foo in text"):
        site_render.tex_to_mathml("\\text{\\foo x}", display=False)
    with pytest.raises(site_render.MathError, match="stray backslash"):
        site_render.tex_to_mathml("\\text{a \\} b}", display=False)


def test_a_scripted_function_name_keeps_its_script_and_is_set_apart_after_it():
    thin = '<mspace width="0.1667em"></mspace>'
    squared = site_render.tex_to_mathml("1 - \\tanh^2 z", display=False)
    # msup keeps its two children (base, exponent): not drawn as "tanh" with a subscript 2
    assert f"<msup><mi>tanh</mi><mn>2</mn></msup>{thin}<mi>z</mi>" in squared
    nested = site_render.tex_to_mathml("\\log_{a_b} x", display=False)
    assert nested.count(thin) == 1 and f"</msub></mrow></msub>{thin}<mi>x</mi>" in nested
    assert "mspace" not in site_render.tex_to_mathml("\\sin^2(x)", display=False)


def test_solution_regions_are_folded_and_the_code_around_them_stays_visible():
    source = "x = 1\n# BEGIN SOLUTION 1.1: do it\nsecret = 42\n# END SOLUTION\nprint(x)"
    html = site_render.render_code(source)
    before, _, rest = html.partition("<details")
    folded, _, after = rest.partition("</details>")
    assert "x" in before and "secret" not in before
    assert "Show solution" in folded and "secret" in folded and "1.1: do it" in folded
    assert "print" in after and "BEGIN SOLUTION" not in html


def _stored(path: Path, title: str, *cells) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {title}\n\nWhat {title} is about."), *cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    nbformat.write(nb, path)


def test_pages_link_in_course_order_with_titles_contents_tasks_and_no_widgets(tmp_path):
    src = tmp_path / "nbs"
    src.mkdir()
    bar = nbformat.v4.new_code_cell("train()")
    bar.outputs = [nbformat.v4.new_output(
        "display_data", data={"application/vnd.jupyter.widget-view+json": {"model_id": "m"},
                              "text/plain": "epoch 1/10:   0%|          | 0/120"})]
    answer = nbformat.v4.new_markdown_cell("**Answer.** Forty-two.", metadata={"tags": ["answer"]})
    # Named like the first two course notebooks: the index must take their tasks from the table.
    _stored(src / "Dropout.ipynb", "Second", nbformat.v4.new_markdown_cell("## Part B"))
    _stored(src / "FullyConnectedNets.ipynb", "First",
            nbformat.v4.new_markdown_cell("## Part A\n\nSee $x^2$."), bar, answer)
    out = tmp_path / "site"

    result = _run_site("--notebooks", str(src), "--out", str(out), "--no-execute")

    assert result.returncode == 0, result.stderr
    first = (out / "FullyConnectedNets.html").read_text()
    second = (out / "Dropout.html").read_text()
    assert "<title>First</title>" in first and '<meta name="viewport"' in first
    assert '<a rel="next" href="Dropout.html">' in first and 'rel="prev"' not in first
    assert '<a rel="prev" href="FullyConnectedNets.html">' in second
    assert re.search(r'<nav class="toc".*href="#Part-A"', first, re.DOTALL)
    assert "<math" in first and "$x^2$" not in first
    assert '<details class="spoiler answer"><summary>Show answer</summary>' in first
    assert "0%|" not in first and "widget" not in first
    assert "widgets" not in json.loads((out / "FullyConnectedNets.ipynb").read_text())["metadata"]
    index = (out / "index.html").read_text()
    assert index.index("FullyConnectedNets.html") < index.index("Dropout.html")  # course order
    assert "What First is about." in index
    for task in TASKS:
        if task.notebook == "FullyConnectedNets":
            assert f'<span class="task-id">{task.id}</span> {task.title}' in index
    assert "shown with its stored outputs" in index
    assert "<script" not in first + second + index  # nothing to run, nothing to fetch
    assert not re.search(r"(src|href)=\"(https?:)?//", first + second + index)


@pytest.mark.slow
def test_student_site_shows_stubs_and_no_solution(tmp_path):
    out = tmp_path / "student-site"
    result = _run_site("--student", "--no-execute", "--out", str(out))
    assert result.returncode == 0, result.stderr
    page = (out / "FullyConnectedNets.html").read_text()
    assert "NotImplementedError" in page
    assert "Show solution" not in page and "Show answer" not in page
    assert "Student release" in page


def test_the_site_stylesheet_comes_after_the_code_colours_and_its_rules_match(tmp_path):
    site_render.write_assets(tmp_path)
    css = (tmp_path / "assets" / "site.css").read_text()
    # pygments' unscoped default must not override the site's pre (same specificity).
    assert css.index("pre { line-height: 125%; }") < css.index("line-height: 1.4")
    # The narrow-screen rule targets the contents list the pages have: a ul.
    assert site_render.toc_html([(2, "a", "A")]).startswith('<nav class="toc"')
    assert "<ul>" in site_render.toc_html([(2, "a", "A")])
    phone = css[css.index("@media (max-width: 40rem)"):]
    assert ".toc > ul { columns: 1; }" in phone[:phone.index("}\n")]


# -- errors on the student site -------------------------------------------------------------

_TREE = Path("/tmp/kit-site-student-abc123/student")  # where the release ran; gone later


def _failed_cell(source: str, ename: str, evalue: str, frame: str = "") -> nbformat.NotebookNode:
    """An executed code cell that stopped, with an IPython-style coloured traceback."""
    cell = nbformat.v4.new_code_cell(source)
    frames = [f"\x1b[36mFile \x1b[39m\x1b[32m{frame}\x1b[39m, in f()"] if frame else []
    cell.outputs = [nbformat.v4.new_output(
        "error", ename=ename, evalue=evalue,
        traceback=["\x1b[31m" + "-" * 75 + "\x1b[39m",
                   f"\x1b[31m{ename}\x1b[39m    Traceback (most recent call last)",
                   *frames, f"\x1b[31m{ename}\x1b[39m: {evalue}"])]
    return cell


def _student_run() -> nbformat.NotebookNode:
    """What the student release's notebook 1 looks like once executed with allow_errors."""
    printed = nbformat.v4.new_code_cell("show()")
    printed.outputs = [nbformat.v4.new_output(
        "stream", name="stdout", text=f"data from {_TREE}/datasets\n")]
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Demo"),
        _failed_cell("load()", "ValueError", f"bad file {_TREE}/course/data.npz",
                     f"{_TREE}/course/data_utils.py:12"),
        printed,
        _failed_cell("out, _ = affine_forward(x, w, b)", "NotImplementedError",
                     "task 1.1 (affine_forward): not written yet; see the TODO in course/layers.py",
                     f"{_TREE}/course/layers.py:106"),
        _failed_cell("model = FullyConnectedNet([10])\nsolver = Solver(model, data)",
                     "NotImplementedError", "task 1.7 (FullyConnectedNet.__init__): not written "
                     "yet; see the TODO in course/classifiers/fc_net.py",
                     f"{_TREE}/course/classifiers/fc_net.py:80"),
        nbformat.v4.new_code_cell("x = 1"),
        _failed_cell("solver.train()", "NameError", "name 'solver' is not defined"),
        _failed_cell("best = None\nraise NotImplementedError('task 1.14 (this cell): ...')",
                     "NotImplementedError", "task 1.14 (this cell): not written yet; see the TODO "
                     "in notebooks/FullyConnectedNets.ipynb"),
        _failed_cell("best.loss(X)", "AttributeError", "'NoneType' object has no attribute 'loss'"),
    ]
    return nb


def _student_options() -> site.BuildOptions:
    return site.BuildOptions([], None, student=True, pythonpath=_TREE)


def test_a_student_page_shows_one_true_line_per_stopped_cell_and_no_traceback():
    nb = _student_run()
    site.explain_errors(nb, _student_options())
    shown = ["".join(o["traceback"]) for c in nb.cells if c.cell_type == "code"
             for o in c.outputs if o["output_type"] == "error"]
    assert shown == [
        "ValueError: bad file course/data.npz",  # no stub before it: type and message only
        "Stopped at a stub: task 1.1 is not written yet (affine_forward in course/layers.py).",
        "Stopped at a stub: task 1.7 is not written yet "
        "(FullyConnectedNet.__init__ in course/classifiers/fc_net.py).",
        # the cell that assigns `solver` stopped at 1.7's stub
        "Stopped: this cell needs the result of an earlier cell, which stopped at the stub of "
        "task 1.7 (here: NameError: name 'solver' is not defined).",
        "Stopped at a stub: task 1.14 is not written yet (the TODO in this cell).",
        "Stopped: this cell needs the result of an earlier cell, which stopped at the stub of "
        "task 1.14 (here: AttributeError: 'NoneType' object has no attribute 'loss').",
    ]
    # Neither the download nor the page shows a frame or the temporary tree.
    saved = nbformat.writes(nb)
    page = site_render.page_html(site_render.render_notebook(nb, "Demo", student=True), None, None)
    for text in (saved, page):
        assert "/tmp/" not in text and "kit-site-student" not in text
        assert "Traceback" not in text and "File " not in text
    assert "data from datasets" in page


def test_the_student_index_says_what_stopped_and_mentions_no_folded_solutions():
    nb = _student_run()
    summary = site.explain_errors(nb, _student_options())
    page = site_render.Page("FullyConnectedNets", "Demo", "About it.", "")
    index = site_render.index_html(
        [site_render.IndexEntry(page, "ok", 8.0, errors=summary)], "Student release", student=True)
    assert ("FullyConnectedNets.ipynb: ran in 8 s; 3 of 8 code cells stop at a stub "
            "(tasks 1.1, 1.7, 1.14); 2 more stop because they need the result of an earlier "
            "cell that stopped; 1 more stops with an error (first: ValueError: bad file "
            "course/data.npz).") in index
    assert "without errors" not in index and "folded" not in index


def test_the_solution_index_never_says_without_errors_of_a_notebook_showing_one():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("1"),
                _failed_cell("raise ValueError('on purpose')", "ValueError", "on purpose")]
    summary = site.explain_errors(nb, site.BuildOptions([], None))
    page = site_render.Page("Demo", "Demo", "", "")
    index = site_render.index_html([site_render.IndexEntry(page, "ok", 3.0, errors=summary)])
    assert "ran in 3 s; 1 of 2 code cells stops with an error (first: ValueError: on purpose)" \
        in index
    assert "without errors" not in index and "Solutions and answers are folded" in index
    assert "Traceback" in "".join(nb.cells[1].outputs[0]["traceback"])  # solution site keeps it


@pytest.mark.slow
def test_an_executed_student_site_has_no_traceback_and_no_temporary_path(tmp_path):
    out = tmp_path / "student-site"
    result = _run_site("--student", "--only", "Dropout", "--out", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    files = [out / "Dropout.html", out / "Dropout.ipynb", out / "index.html"]
    text = "".join(f.read_text() for f in files)
    assert "Stopped at a stub: task 3.1 is not written yet (dropout_forward in course/layers.py)" \
        in text
    assert "/tmp/" not in text and "kit-site-student" not in text and "Traceback" not in text
    assert "without errors" not in text and "stop at a stub (tasks" in text


def _png() -> str:
    import base64
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), (200, 30, 30)).save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _figure_cell(source: str, figures: int = 1) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source)
    cell.outputs = [nbformat.v4.new_output("display_data", data={"image/png": _png(),
                                                                 "text/plain": "<Figure>"})
                    for _ in range(figures)]
    return cell


def test_every_figure_gets_an_alt_text_from_its_heading_and_title():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Demo\n\n## Training with `Solver`"),
        _figure_cell('fig, ax = plt.subplots()\nax.set_title("Loss per epoch")\nplt.show()'),
        _figure_cell('show_conv_filters(W, title="First-layer filters")'),
        nbformat.v4.new_markdown_cell("### Two figures"),
        _figure_cell('plt.title("one")\nplot_curves(x)', figures=2),
    ]
    body = site_render.render_notebook(nb, "Demo").body
    alts = re.findall(r'<img [^>]*alt="([^"]*)"', body)
    assert alts == [
        "Figure under 'Training with Solver': Loss per epoch",
        "Figure under 'Training with Solver': First-layer filters "
        "(drawn by show_conv_filters)",
        "Figure 1 of 2 under 'Two figures'",  # which title is whose: not known
        "Figure 2 of 2 under 'Two figures'",
    ]
    assert "No description has been provided" not in body
    assert "alt" not in nb.cells[1].outputs[0].metadata  # the notebook itself is unchanged


def test_norm_bars_without_left_right_do_not_stretch():
    # A bare <mo>‖</mo> is a stretchy fence to the browser: beside a sum with limits the
    # opening bar grew to the sum's height while the closing one (under ^2) did not.
    norm = site_render.tex_to_mathml("\\sum_{l=1}^{L} \\lVert W_l \\rVert^2", display=True)
    assert norm.count('<mo stretchy="false">&#x02016;</mo>') == 2, norm
    bars = site_render.tex_to_mathml("\\lvert a \\rvert", display=False)
    assert bars.count('<mo stretchy="false">&#x0007C;</mo>') == 2, bars
    sized = site_render.tex_to_mathml("\\left\\lVert \\frac{a}{b} \\right\\rVert", display=True)
    assert 'stretchy="false"' not in sized  # \left...\right still stretches


def test_the_build_says_which_tree_the_site_shows(tmp_path):
    # A tired instructor who typed the wrong STUDENT= sees it in the last lines.
    _notebook(tmp_path / "Only.ipynb", "1")
    result = _run_site("--notebooks", str(tmp_path), "--no-execute", "--out",
                       str(tmp_path / "site"))
    assert result.returncode == 0, result.stderr
    assert "Site written from the solution tree (solutions and answers folded): " in result.stdout


def test_only_takes_a_name_in_any_case_with_or_without_ipynb(tmp_path):
    for name in ("FullyConnectedNets", "Dropout"):
        _notebook(tmp_path / f"{name}.ipynb", "1")
    for given in ("FullyConnectedNets.ipynb", "fullyconnectednets", "FULLYCONNECTEDNETS.IPYNB"):
        chosen = site.select_notebooks(tmp_path, [given])
        assert [p.name for p in chosen] == ["FullyConnectedNets.ipynb"], given
    # A name that matches nothing lists the ones there are.
    with pytest.raises(site.SiteError, match=r"no notebook named Fully in .*\(there: "
                       r"FullyConnectedNets, Dropout\)"):
        site.select_notebooks(tmp_path, ["Fully"])


def test_the_index_says_which_dataset_each_notebook_ran_on():
    # get_data() prints which dataset it loaded; the index repeats it beside the run time.
    def run(printed: str) -> nbformat.NotebookNode:
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_markdown_cell("Using the CIFAR-10 dataset here"),
                    nbformat.v4.new_code_cell("data = get_data()")]
        nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text=printed)]
        return nb

    digits = run("Using the embedded digits dataset: no CIFAR-10 in datasets/ (run 'make "
                 "data' to download it).\n    X_train: shape (1200, 1, 8, 8)\n")
    assert site_render.dataset_used(digits) == "digits"
    assert site_render.dataset_used(run("ok\nUsing the CIFAR-10 dataset: found in x.\n")) \
        == "CIFAR-10"
    assert site_render.dataset_used(run("no notice\n")) == ""  # markdown does not count
    page = site_render.Page("Demo", "Demo", "", "")
    index = site_render.index_html([site_render.IndexEntry(page, "ok", 3.0, dataset="digits")])
    assert ("Demo.ipynb: ran without errors in 3 s. Data: the digits that ship with "
            "scikit-learn (8x8, grayscale).") in index
    unsaid = site_render.index_html([site_render.IndexEntry(page, "ok", 3.0)])
    assert "Data:" not in unsaid


def test_mathrel_plus_equals_is_one_operator():
    # latex2mathml nests an <mrow> in an <mo> for \mathrel{+}; the browser drew "+ =".
    update = site_render.tex_to_mathml("dx[i] \\mathrel{+}= w", display=False)
    assert "<mo>&#x0002B;&#x0003D;</mo><mi>w</mi>" in update, update
    assert "<mo><mrow>" not in update
    alone = site_render.tex_to_mathml("a \\mathrel{\\le} b", display=False)
    assert '<mo lspace="0.2778em" rspace="0.2778em">&#x02264;</mo>' in alone, alone


# Printed output is 0.8rem DejaVu Sans Mono on a phone (about 7.7 px a character) in a
# column of 400 px less 2rem of page padding and the pre's own padding and border: about
# 44 characters at 400 px, 42 at 390. 40 leaves room for a slightly wider monospace font.
PHONE_LINE_CHARS = 40


def _data_cell(notebook: str) -> dict:
    cells = json.loads((REPO / "notebooks" / f"{notebook}.ipynb").read_text())["cells"]
    return next(c for c in cells
                if c["cell_type"] == "code" and "get_data()" in "".join(c["source"]))


def _long_lines(text: str) -> list[str]:
    # get_data's notice ("Using the embedded digits dataset (COURSE_DATASET=digits).") is a
    # sentence that wraps between words, and the index reads its wording; it is not checked.
    return [line for line in text.splitlines()
            if len(line) > PHONE_LINE_CHARS and not line.startswith("Using the ")]


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_the_stored_data_printout_fits_a_phone_line(notebook):
    printed = "".join("".join(o.get("text", "")) for o in _data_cell(notebook)["outputs"])
    assert "digits" in printed  # the reference outputs ran on the embedded dataset
    assert _long_lines(printed) == []


def test_the_data_printout_fits_a_phone_line_on_cifar10_too(capsys):
    # The FullyConnectedNets cell prints every array of get_data(); CIFAR-10's shapes are
    # the widest (49000 images of 3 x 32 x 32). Run its source on arrays of those shapes.
    cifar = {"X_train": np.zeros((49000, 3, 32, 32), np.float32),
             "y_train": np.zeros(49000, np.int64),
             "X_val": np.zeros((1000, 3, 32, 32), np.float32), "y_val": np.zeros(1000, np.int64),
             "X_test": np.zeros((1000, 3, 32, 32), np.float32),
             "y_test": np.zeros(1000, np.int64), "mean_image": np.zeros((3, 32, 32), np.float32),
             "class_names": np.array(["airplane", "automobile", "bird", "cat", "deer", "dog",
                                      "frog", "horse", "ship", "truck"])}
    source = "".join(_data_cell("FullyConnectedNets")["source"])
    exec(source, {"np": np, "get_data": lambda: cifar})
    printed = capsys.readouterr().out
    assert "(49000, 3, 32, 32)" in printed and "D = 3072" in printed
    assert _long_lines(printed) == []
