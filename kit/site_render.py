"""Turn executed notebooks into the pages of the self-study site (no network, no JS).

Used by ``kit.site``. Everything a page needs is in the page or in ``assets/`` beside it:

* **Math** is rendered at build time: each ``$...$`` / ``$$...$$`` of a markdown cell
  becomes MathML (``latex2mathml``), which browsers draw natively. No MathJax, no script,
  nothing fetched when the page opens, and no flash of raw TeX.
* **Spoilers** are folded, not removed: an ``answer`` cell and each solution region of a
  code cell sit in a closed ``<details>`` ("Show answer" / "Show solution").
* **Navigation**: a bar with the index and the previous and next notebooks, the
  notebook's own title, and a table of contents built from its headings.
* **Progress widgets** are dropped: without a widget manager they show nothing (or a bar
  frozen at 0%); the Solver prints its final progress line as text instead.
"""

from __future__ import annotations

import ast
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat

from kit import markers
from kit import notebooks as nbs
from kit.site_errors import ErrorSummary

TEMPLATES = Path(__file__).resolve().parent / "templates"
SITE_TEMPLATE = TEMPLATES / "site"
ASSETS = SITE_TEMPLATE / "assets"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "widgets"

# A placeholder no markdown rule touches (letters and digits only), swapped for MathML
# after nbconvert has rendered the markdown around it.
_TOKEN = "KITMATH{}X"
_TOKEN_RE = re.compile(r"KITMATH(\d+)X")
# Code (fenced blocks, then inline spans) is left alone: a `$` there is not math.
_CODE_RE = re.compile(r"(^```.*?^```[^\n]*$|`[^`\n]+`)", re.DOTALL | re.MULTILINE)
_DISPLAY_RE = re.compile(r"\$\$(.+?)\$\$", re.DOTALL)
# Inline math: no space just inside the dollars, no blank line inside, not `\$`.
_INLINE_RE = re.compile(r"(?<![\\$])\$(?![\s$])((?:[^$\n]|\n(?!\s*\n))+?)(?<![\s\\])\$(?!\d)")
_HEADING_RE = re.compile(r'<h([1-6]) id="([^"]+)"[^>]*>(.*?)</h\1>', re.DOTALL)
_TAG_RE = re.compile(r"<[^>]+>")


class MathError(ValueError):
    """A formula that the build-time renderer cannot convert; names the notebook and cell."""


@dataclass
class Page:
    """One notebook's page, before it is wrapped in the site's frame."""

    name: str
    title: str
    description: str  # Markdown (one paragraph): see description_html
    body: str
    toc: list[tuple[int, str, str]] = field(default_factory=list)  # (level, id, text)


# -- math ----------------------------------------------------------------------------


def extract_math(markdown: str, formulas: list[tuple[str, bool]]) -> str:
    """Replace each formula of ``markdown`` by a placeholder; append (tex, display) to
    ``formulas``."""

    def keep(match: re.Match[str], display: bool) -> str:
        formulas.append((match.group(1).strip(), display))
        return _TOKEN.format(len(formulas) - 1)

    parts = _CODE_RE.split(markdown)
    for i in range(0, len(parts), 2):  # even parts are prose, odd parts are code
        text = _DISPLAY_RE.sub(lambda m: keep(m, True), parts[i])
        parts[i] = _INLINE_RE.sub(lambda m: keep(m, False), text)
    return "".join(parts)


# latex2mathml writes \log p as <mi>log</mi><mi>p</mi>, which browsers draw as "logp".
# TeX puts a thin space between a function name and what it applies to, unless an
# operator follows (a bracket, +, =), which brings its own spacing: so does the site.
_FUNCTION_NAMES = r"(?:log|ln|lg|exp|sin|cos|tan|sinh|cosh|tanh|det|dim|arg|deg|ker|Pr)"
# What may follow for the space to go in: an element that is not an operator (<mo>) and
# not the end of the group (a closing tag).
_APPLIED_TO = re.compile(r"<(?!mo[ >]|/)")
# A bare name; not the base of a script (\tanh^2 z), whose element must keep exactly its
# two or three children: there the space goes after the whole script (below).
_FUNCTION_NAME_RE = re.compile(
    rf"(?<!<msup>)(?<!<msub>)(?<!<msubsup>)(<mi>{_FUNCTION_NAMES}</mi>)(?={_APPLIED_TO.pattern})")
_SCRIPTED_FUNCTION_RE = re.compile(rf"<(msup|msub|msubsup)><mi>{_FUNCTION_NAMES}</mi>")
_THIN_SPACE = '<mspace width="0.1667em"></mspace>'
# A text node (\text{...}): latex2mathml keeps TeX's escapes there (pool\_height). The
# ones that stand for a character become it; any other backslash left is raw TeX.
_MTEXT_RE = re.compile(r"(<mtext(?:\s[^>]*)?>)(.*?)(</mtext>)", re.DOTALL)
_TEXT_ESCAPE_RE = re.compile(r"\\([_%&#$\{\}])")
# latex2mathml writes \lVert \rVert \lvert \rvert as a bare <mo> (| and \| get
# stretchy="false"). A bare bar is a stretchy fence to the browser: beside a sum with
# limits it grows to the sum's height while its partner in a superscript (\rVert^2) does
# not, so the two sides of a norm differ in size. In TeX they never stretch without \left.
_BARE_BAR_RE = re.compile(r"<mo>(&#x0007C;|&#x02016;)</mo>")
# latex2mathml writes \mathrel{+} as an <mo> holding an <mrow>, which is not MathML: the
# browser spaces the two operators of \mathrel{+}= apart ("+ ="). TeX sets two relations
# side by side with no space between them, so they become one operator, "+=", which the
# browser spaces as a relation; a \mathrel{X} with no = after it becomes a plain <mo>.
_MATHREL_RE = re.compile(r"<mo><mrow><mo>([^<]+)</mo></mrow></mo>(<mo>&#x0003D;</mo>)?")
_RELATION_SPACE = ' lspace="0.2778em" rspace="0.2778em"'


def _mathrel(match: re.Match[str]) -> str:
    if match.group(2):
        return f"<mo>{match.group(1)}&#x0003D;</mo>"
    return f"<mo{_RELATION_SPACE}>{match.group(1)}</mo>"


def tex_to_mathml(tex: str, display: bool) -> str:
    """MathML for one formula; ``MathError`` (with the TeX) when it cannot be converted."""
    from latex2mathml.converter import convert  # imported late: only the site needs it

    try:
        mathml = convert(tex, display="block" if display else "inline")
    except Exception as error:  # latex2mathml raises several kinds; all mean "bad TeX"
        raise MathError(f"cannot render the formula {tex!r}: {error}") from error
    # An unknown command comes out as its own name (<mi>\foo</mi>): raw TeX on the page.
    unknown = re.search(r">(\\[A-Za-z]+)<", mathml)
    if unknown:
        raise MathError(f"cannot render the formula {tex!r}: unknown command {unknown.group(1)}")
    mathml = _unescape_text(mathml, tex)
    mathml = _space_after_function_names(mathml)
    mathml = _BARE_BAR_RE.sub(r'<mo stretchy="false">\1</mo>', mathml)
    mathml = _MATHREL_RE.sub(_mathrel, mathml)
    # Keep the TeX as the annotation a screen reader or a copy can fall back on.
    return mathml.replace("<math ", f'<math alttext="{html.escape(tex)}" ', 1)


def _unescape_text(mathml: str, tex: str) -> str:
    """Text nodes with TeX's character escapes (``\\_ \\% \\& \\# \\$ \\{ \\}``) turned
    back into the characters; ``MathError`` for any other backslash left in one."""

    def text(match: re.Match[str]) -> str:
        inner = _TEXT_ESCAPE_RE.sub(lambda m: html.escape(m.group(1), quote=False),
                                    match.group(2))
        leftover = re.search(r"\\(?:[A-Za-z]+|.)?", inner)
        if leftover:
            # latex2mathml ends \text{...} at an escaped closing brace, leaving its "\".
            what = (f"unknown command {leftover.group(0)} in text" if len(leftover.group(0)) > 1
                    else "a stray backslash in text (latex2mathml ends \\text{...} at \\}: "
                    "write the braces outside \\text)")
            raise MathError(f"cannot render the formula {tex!r}: {what}")
        return match.group(1) + inner + match.group(3)

    return _MTEXT_RE.sub(text, mathml)


def _space_after_function_names(mathml: str) -> str:
    """A thin space after each function name that applies to what follows it.

    After the name itself, or after the script element it is the base of (``\\log_2 x``,
    ``\\tanh^2 z``): inside ``<msup>`` a third child would turn the space into the
    superscript and the exponent into a stray character.
    """
    mathml = _FUNCTION_NAME_RE.sub(r"\1" + _THIN_SPACE, mathml)
    ends = []
    for match in _SCRIPTED_FUNCTION_RE.finditer(mathml):
        end = _end_of_element(mathml, match.start(), match.group(1))
        if _APPLIED_TO.match(mathml, end):
            ends.append(end)
    for end in reversed(ends):
        mathml = mathml[:end] + _THIN_SPACE + mathml[end:]
    return mathml


def _end_of_element(markup: str, start: int, tag: str) -> int:
    """Where the element of ``tag`` that opens at ``start`` ends (after its closing tag)."""
    depth = 0
    for match in re.compile(rf"<(/?){tag}[\s>]").finditer(markup, start):
        depth += -1 if match.group(1) else 1
        if depth == 0:
            return markup.index(">", match.end() - 1) + 1
    raise MathError(f"unbalanced <{tag}> in the MathML of a formula")


def substitute_math(body: str, formulas: Sequence[tuple[str, bool]]) -> str:
    """Put the MathML of each formula where its placeholder landed in the rendered HTML."""
    return _TOKEN_RE.sub(lambda m: tex_to_mathml(*formulas[int(m.group(1))]), body)


# -- code cells with solution regions --------------------------------------------------


def render_code(source: str) -> str:
    """Highlighted code, each ``BEGIN SOLUTION`` ... ``END SOLUTION`` region folded."""
    chunks: list[tuple[str, list[str]]] = [("code", [])]
    for line in source.splitlines():
        marker = markers.marker_line(line)
        if marker is not None and marker[0] == "begin":
            chunks.append((marker[1] or "solution", []))
        elif marker is not None:
            chunks.append(("code", []))
        else:
            chunks[-1][1].append(line)
    out = []
    for label, lines in chunks:
        if not lines:
            continue
        code = _highlight("\n".join(lines))
        if label == "code":
            out.append(code)
        else:
            out.append(
                '<details class="spoiler solution"><summary>Show solution'
                f' <span class="task">({html.escape(label)})</span></summary>{code}</details>'
            )
    return "\n".join(out)


def _highlight(code: str) -> str:
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import get_lexer_by_name

    formatter = HtmlFormatter(cssclass="highlight hl-ipython3")
    return highlight(code, get_lexer_by_name("ipython3"), formatter)


def pygments_css() -> str:
    """The colours of highlighted code, once for the whole site."""
    from pygments.formatters import HtmlFormatter

    return HtmlFormatter(style="default").get_style_defs(".highlight")


# -- one notebook ---------------------------------------------------------------------


def drop_widgets(nb: nbformat.NotebookNode) -> int:
    """Remove widget views and the stored widget state; return how many views went.

    A widget needs a live kernel or a widget manager script from a CDN; offline, the
    site would show nothing or the text fallback captured when the bar was created
    (0%). The run's final progress line is printed as text by the Solver instead.
    """
    nb.metadata.pop(WIDGET_STATE, None)
    dropped = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        kept = [o for o in cell.get("outputs", []) if WIDGET_VIEW not in o.get("data", {})]
        dropped += len(cell.outputs) - len(kept)
        cell.outputs = kept
    return dropped


def shrink_images(nb: nbformat.NotebookNode) -> None:
    """Re-encode each PNG output with a 256-colour palette when that changes nothing visible.

    Retina figures have four times the pixels; plots use few colours, so a palette
    brings them back to about the weight of the old low-resolution ones (measured on
    FullyConnectedNets: 498 KB of PNG became 150 KB). An image the palette would change
    by more than 1/255 on average (photographs) becomes a JPEG at quality 90 when that is
    at most half the PNG's size (the conv notebook's photo figure: 821 KB of PNG).
    """
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "image/png" not in data:
                continue
            kind, encoded = _smaller_image(data["image/png"])
            if kind != "image/png":
                del data["image/png"]
                # Retina figures declare their display size per type: keep it with the image.
                metadata = output.get("metadata", {})
                if "image/png" in metadata:
                    metadata[kind] = metadata.pop("image/png")
            data[kind] = encoded


def _smaller_image(encoded: str) -> tuple[str, str]:
    """(mime type, base64) of the lightest faithful encoding of one PNG figure."""
    import base64
    import io

    import numpy as np
    from PIL import Image

    raw = base64.b64decode(encoded)
    image = Image.open(io.BytesIO(raw)).convert("RGBA")
    palette = image.quantize(256, method=Image.Quantize.FASTOCTREE)
    error = np.abs(
        np.asarray(palette.convert("RGBA"), dtype=np.int16) - np.asarray(image, dtype=np.int16)
    ).mean()
    buffer = io.BytesIO()
    if error <= 1.0:
        palette.save(buffer, "PNG", optimize=True)
        kind = "image/png"
    elif np.asarray(image)[..., 3].min() == 255:  # opaque: JPEG loses nothing of that
        image.convert("RGB").save(buffer, "JPEG", quality=90, optimize=True)
        kind = "image/jpeg"
        if buffer.tell() > len(raw) // 2:
            return "image/png", encoded
    else:
        return "image/png", encoded
    if buffer.tell() >= len(raw):
        return "image/png", encoded
    return kind, base64.b64encode(buffer.getvalue()).decode("ascii")


# What a plot's title is called in the calls that set one: plt.title("..."),
# ax.set_title("..."), fig.suptitle("..."), and title="..." of any call (ax.set(...),
# the course's plot helpers).
_TITLE_CALLS = frozenset({"title", "set_title", "suptitle"})
_PLOT_HELPER_RE = re.compile(r"\b((?:plot|show|visualize)_\w+)\(")


def describe_figures(nb: nbformat.NotebookNode) -> None:
    """Give each image output an alt text from what the page knows about it.

    nbconvert writes "No description has been provided for this image" on every image
    that has none, which tells a screen-reader user nothing. What is known: the heading
    the figure sits under, the plot's title when the cell's code sets it with a literal
    string, and the course helper that drew it. An alt text already in the output's or
    the cell's metadata is kept.
    """
    for cell, heading in zip(nb.cells, nbs.headings_above(nb.cells), strict=True):
        if cell.cell_type != "code" or cell.metadata.get("alt"):
            continue
        images = [o for o in cell.get("outputs", [])
                  if any(kind.startswith("image/") for kind in o.get("data", {}))]
        titles = _literal_titles(cell.source)
        helpers = sorted(set(_PLOT_HELPER_RE.findall(cell.source)))
        for number, output in enumerate(images, start=1):
            metadata = output.setdefault("metadata", {})
            if metadata.get("alt") or any(isinstance(v, dict) and v.get("alt")
                                          for v in metadata.values()):
                continue
            which = f"Figure {number} of {len(images)}" if len(images) > 1 else "Figure"
            text = f"{which} under '{_plain(heading)}'" if heading else which
            # With several figures in one cell, which title or helper drew which is not
            # known: they are named only for a cell's one figure.
            if len(images) == 1 and titles:
                text += ": " + "; ".join(titles)
            if len(images) == 1 and len(helpers) == 1:
                text += f" (drawn by {helpers[0]})"
            metadata["alt"] = text


def _literal_titles(source: str) -> list[str]:
    """The titles a cell's code gives its plots as string literals, in order."""
    try:
        tree = markers.parse_python(source)
    except SyntaxError:  # IPython syntax (magics)
        return []
    titles = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = getattr(node.func, "attr", getattr(node.func, "id", ""))
        values = [k.value for k in node.keywords if k.arg == "title"]
        if name in _TITLE_CALLS and node.args:
            values.insert(0, node.args[0])
        titles += [v.value for v in values
                   if isinstance(v, ast.Constant) and isinstance(v.value, str) and v.value]
    return list(dict.fromkeys(titles))


def _plain(markdown: str) -> str:
    """A heading's Markdown as plain text: no code ticks, emphasis marks or dollars."""
    return re.sub(r"[`*$]", "", markdown).strip()


def render_notebook(nb: nbformat.NotebookNode, name: str, student: bool = False) -> Page:
    """The page body of one executed notebook, with its title, description and contents.

    ``student``: the notebook comes from the student release (answer cells hold prompts).
    """
    from nbconvert import HTMLExporter  # imported late: slow, and not needed for --in-place

    nb = nbformat.from_dict(nb)  # a copy: the placeholders must not reach the .ipynb
    description = notebook_description(nb)  # before its math becomes placeholders
    drop_widgets(nb)
    shrink_images(nb)
    describe_figures(nb)
    formulas: list[tuple[str, bool]] = []
    for number, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            try:
                cell.source = extract_math(cell.source, formulas)
            except MathError as error:
                raise MathError(f"{name}.ipynb cell {number}: {error}") from error
    exporter = HTMLExporter(
        template_name="basic",
        extra_template_paths=[str(SITE_TEMPLATE)],
        template_file="page.html.j2",
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        filters={"site_code": render_code},
    )
    body, _ = exporter.from_notebook_node(nb, resources={"student": student})
    try:
        body = substitute_math(body, formulas)
    except MathError as error:
        raise MathError(f"{name}.ipynb: {error}") from error
    toc = headings(body)
    title = next((text for level, _, text in toc if level == 1), name)
    return Page(name, title, description, body, [h for h in toc if h[0] in (2, 3)])


def headings(body: str) -> list[tuple[int, str, str]]:
    """(level, id, text) of every heading nbconvert gave an id, in page order."""
    found = []
    for level, anchor, inner in _HEADING_RE.findall(body):
        inner = re.sub(r'<a class="anchor-link".*?</a>', "", inner, flags=re.DOTALL)
        # MathML in a heading would read as its letters run together: use its alttext.
        inner = re.sub(r'<math alttext="([^"]*)".*?</math>', r"\1", inner, flags=re.DOTALL)
        text = html.unescape(_TAG_RE.sub("", inner)).strip()
        found.append((int(level), anchor, text))
    return found


def notebook_description(nb: nbformat.NotebookNode) -> str:
    """The first paragraph after the title of the notebook's first markdown cell (its
    Markdown source, on one line; :func:`description_html` renders it)."""
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        paragraphs = [p.strip() for p in re.split(r"\n\s*\n", cell.source) if p.strip()]
        prose = [p for p in paragraphs if not p.startswith(("#", "*", "-", "|", "```"))]
        if prose:
            return " ".join(prose[0].split())
    return ""


def description_html(markdown: str) -> str:
    """Inline HTML of a one-paragraph Markdown description: emphasis, code and math rendered
    as on the notebook's page (no literal ``**`` or ``*``), without the enclosing ``<p>``."""
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    formulas: list[tuple[str, bool]] = []
    rendered = markdown2html_mistune(extract_math(markdown, formulas)).strip()
    rendered = re.sub(r"^<p>(.*)</p>$", r"\1", rendered, flags=re.DOTALL)
    return substitute_math(rendered, formulas)


# -- the frame around a page, and the index ----------------------------------------------


def _read_asset(name: str) -> str:
    return (ASSETS / name).read_text(encoding="utf-8")


def page_html(page: Page, previous: Page | None, following: Page | None, note: str = "") -> str:
    """A complete page: head, navigation bar, title, contents, the notebook, a footer bar."""
    nav = _nav_bar(previous, following)
    contents = toc_html(page.toc)
    body = page.body
    # The contents go right under the notebook's own title (its first h1), so a page
    # opens with: navigation, title, contents, then the introduction.
    end_of_title = body.find("</h1>")
    if end_of_title >= 0:
        cut = end_of_title + len("</h1>")
        body = body[:cut] + contents + body[cut:]
    else:
        body = contents + body
    banner = f'<p class="note">{html.escape(note)}</p>' if note else ""
    return _PAGE.format(
        title=html.escape(page.title),
        nav=nav,
        banner=banner,
        body=body,
        name=html.escape(page.name, quote=True),
    )


def toc_html(toc: Sequence[tuple[int, str, str]]) -> str:
    """Nested lists of links: h2 entries, each with its h3 entries below it."""
    if not toc:
        return ""
    top = min(level for level, _, _ in toc)
    items: list[str] = []
    open_sub = False
    for level, anchor, text in toc:
        link = f'<a href="#{html.escape(anchor, quote=True)}">{html.escape(text)}</a>'
        if level == top:
            if open_sub:
                items.append("</ul>")
                open_sub = False
            if items:
                items.append("</li>")
            items.append(f"<li>{link}")
        else:
            if not open_sub:
                items.append("<ul>")
                open_sub = True
            items.append(f"<li>{link}</li>")
    items.append("</ul></li>" if open_sub else "</li>")
    return (
        '<nav class="toc" aria-label="Contents"><h2 class="toc-title">Contents</h2><ul>'
        + "".join(items)
        + "</ul></nav>"
    )


def _nav_bar(previous: Page | None, following: Page | None) -> str:
    links = ['<a rel="index" href="index.html">Index</a>']
    if previous is not None:
        links.append(
            f'<a rel="prev" href="{previous.name}.html">&larr; {html.escape(previous.title)}</a>'
        )
    if following is not None:
        links.append(
            f'<a rel="next" href="{following.name}.html">{html.escape(following.title)} &rarr;</a>'
        )
    return '<nav class="site-nav">' + " ".join(links) + "</nav>"


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="stylesheet" href="assets/site.css">
</head>
<body class="notebook-page">
<header>{nav}</header>
<main>
{banner}
<article class="notebook">
{body}
</article>
</main>
<footer>{nav}
<p class="files"><a href="{name}.ipynb">Download this notebook ({name}.ipynb)</a></p>
</footer>
</body></html>
"""


@dataclass
class IndexEntry:
    """What the index says about one notebook."""

    page: Page
    status: str  # "ok", "failed", or "stored" (rendered from stored outputs)
    seconds: float | None
    error: str = ""
    tasks: list[tuple[str, str]] = field(default_factory=list)  # (id, title)
    # The cells that show an error (a notebook may run to its end and still hold some:
    # every student notebook, or a cell tagged raises-exception); None: not known.
    errors: ErrorSummary | None = None
    dataset: str = ""  # what dataset_used found ("digits", "CIFAR-10"), or "" if nothing


# course.data_utils.get_data() prints one of these lines (with the reason after it).
_DATASET_NOTICE = re.compile(r"^Using the (CIFAR-10|embedded digits) dataset\b", re.MULTILINE)
DATASET_WORDS = {"digits": "the digits that ship with scikit-learn (8x8, grayscale)",
                 "CIFAR-10": "CIFAR-10 (32x32 colour photographs)"}


def dataset_used(nb: nbformat.NotebookNode) -> str:
    """The dataset a notebook's outputs say it loaded: "digits", "CIFAR-10" or ""."""
    for cell in nb.cells:
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if output.get("output_type") != "stream":
                continue
            found = _DATASET_NOTICE.search("".join(output.get("text", "")))
            if found:
                return "digits" if found.group(1) == "embedded digits" else "CIFAR-10"
    return ""


# The index's introduction. "Folded" is true of the solution site only: the student
# release has stubs instead of solutions and prompts instead of answers.
_INTRO = ("The course notebooks, executed top to bottom. Read them in this order; each builds "
          "on\nthe one before.")
_FOLDED = " Solutions and answers are folded: open one only after trying yourself."


def index_html(entries: Sequence[IndexEntry], note: str = "", student: bool = False) -> str:
    """The front page: the notebooks in order, each with its description, tasks and run time.

    ``student``: the site shows the student release (no folded solutions to mention).
    """
    items = [_index_item(e) for e in entries]
    banner = f'<p class="note">{html.escape(note)}</p>' if note else ""
    intro = _INTRO if student else _INTRO + _FOLDED
    return _INDEX.format(items="\n".join(items), banner=banner, intro=intro)


def _index_item(entry: IndexEntry) -> str:
    page = entry.page
    errors = entry.errors.describe() if entry.errors is not None else ""
    if entry.status == "stored":
        run = "shown with its stored outputs (not re-executed)"
        if errors:
            run += f"; {html.escape(errors)}"
    elif entry.status == "ok" and errors:
        run = f"ran in {entry.seconds:.0f} s; {html.escape(errors)}"
    elif entry.status == "ok":
        run = f"ran without errors in {entry.seconds:.0f} s"
    else:
        run = f"stopped with an error after {entry.seconds:.0f} s: {html.escape(entry.error)}"
    tasks = "".join(
        f'<li><span class="task-id">{html.escape(tid)}</span> {html.escape(title)}</li>'
        for tid, title in entry.tasks
    )
    task_list = f'<ol class="tasks">{tasks}</ol>' if tasks else ""
    data = (f" Data: {html.escape(DATASET_WORDS.get(entry.dataset, entry.dataset))}."
            if entry.dataset else "")
    return (
        f'<li class="notebook-entry {entry.status}">'
        f'<h2><a href="{page.name}.html">{html.escape(page.title)}</a></h2>'
        f'<p class="description">{description_html(page.description)}</p>'
        f'<p class="meta">{page.name}.ipynb: {run}.{data}'
        f' <a href="{page.name}.ipynb">Notebook file</a></p>'
        f"{task_list}</li>"
    )


_INDEX = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Neural networks from scratch: the notebooks</title>
<link rel="stylesheet" href="assets/site.css">
</head>
<body class="index-page">
<main>
<h1>Neural networks from scratch</h1>
{banner}
<p>{intro}</p>
<ol class="notebooks">
{items}
</ol>
</main>
</body></html>
"""


def write_assets(out: Path) -> None:
    """The site's one stylesheet (code colours, then layout), shared by every page.

    Pygments' rules come first so that the site's own win where both set something: its
    defaults include an unscoped ``pre { line-height: 125% }``, which would otherwise
    override the site's ``pre`` (same specificity, later rule wins).
    """
    folder = out / "assets"
    folder.mkdir(exist_ok=True)
    css = ("/* code colours (pygments) */\n" + pygments_css() + "\n\n/* the site */\n"
           + _read_asset("site.css"))
    (folder / "site.css").write_text(css, encoding="utf-8")


def tasks_by_notebook(tasks: Sequence[Any]) -> dict[str, list[tuple[str, str]]]:
    """Notebook name -> [(task id, title)] in table order."""
    grouped: dict[str, list[tuple[str, str]]] = {}
    for task in tasks:
        grouped.setdefault(task.notebook, []).append((task.id, task.title))
    return grouped
