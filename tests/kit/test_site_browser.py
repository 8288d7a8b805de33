"""The built site in a real browser: headless Chromium, no network, screenshots kept.

Two sites are built and opened from ``file://``:

* the course notebooks as stored in ``notebooks/`` (``--no-execute``: every real page,
  its math, solutions and answers, in seconds);
* a small fixture notebook executed for the site (``fixtures/site/``): a figure and a
  training run, so retina figures and the Solver's static progress line are checked on
  what the build really produces.

Chromium comes from PATH (``$CHROMIUM`` overrides); ``.ci/run`` installs Debian's
``chromium`` when it is missing and apt is usable. Without it the test is skipped and says
why. Screenshots go to ``build/site-screenshots/`` for a person to look at.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from browser import Browser, find_chromium

REPO = Path(__file__).resolve().parents[2]
FIXTURE = Path(__file__).parent / "fixtures" / "site"
SCREENSHOTS = REPO / "build" / "site-screenshots"
CHROMIUM = find_chromium()

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="no Chromium on PATH (apt-get install chromium; .ci/run does it when it can)",
    ),
]

# Read in the page: what a reader sees and what the checks need.
PAGE_FACTS = r"""(() => {
  const text = document.body.innerText;
  const maths = [...document.querySelectorAll('math')];
  const figures = [...document.querySelectorAll('img')].map(img => ({
    natural: img.naturalWidth, shown: img.clientWidth,
    declared: Number(img.getAttribute('width')) || img.naturalWidth,
    box: img.parentElement.clientWidth, complete: img.complete, alt: img.alt}));
  const spoilers = [...document.querySelectorAll('.solution, .answer')].map(el => ({
    tag: el.tagName, open: el.open === true, closedAncestor: !!el.closest('details:not([open])')}));
  const links = [...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href'));
  const ids = [...document.querySelectorAll('[id]')].map(el => el.id);
  return {text, title: document.title, links, ids, figures, spoilers,
          maths: maths.length,
          mathDisplays: [...new Set(maths.map(m => getComputedStyle(m).display))],
          mathEmpty: maths.filter(m => !m.closest('details:not([open])')
                                 && m.getBoundingClientRect().width === 0).length,
          mathFonts: [...new Set(maths.map(m => getComputedStyle(m).fontFamily))],
          // Display formulas that scroll vertically or have text outside their box (where
          // the box clips it): their TeX.
          mathCut: maths.filter(m => m.getAttribute('display') === 'block'
                                     && !m.closest('details:not([open])'))
            .filter(m => {
              const box = m.getBoundingClientRect();
              const walker = document.createTreeWalker(m, NodeFilter.SHOW_TEXT);
              const range = document.createRange();
              let outside = false;
              while (walker.nextNode()) {
                range.selectNodeContents(walker.currentNode);
                const r = range.getBoundingClientRect();
                if (r.height > 0 && (r.top < box.top - 0.5 || r.bottom > box.bottom + 0.5)) {
                  outside = true;
                }
              }
              return outside || m.scrollHeight > m.clientHeight + 1;
            }).map(m => m.getAttribute('alttext')),
          casesAlign: [...new Set([...document.querySelectorAll('mtd[columnalign="left"]')]
            .map(td => getComputedStyle(td).textAlign))],
          preLineHeights: [...new Set([...document.querySelectorAll('.input_area pre')]
            .map(pre => { const cs = getComputedStyle(pre);
                          return Math.round(parseFloat(cs.lineHeight) / parseFloat(cs.fontSize)
                                            * 100) / 100; }))],
          viewport: !!document.querySelector('meta[name=viewport]'),
          measure: document.querySelector('main').getBoundingClientRect().width,
          // Code of at most 100 characters a line (ruff's limit) that scrolls sideways:
          // the length of its longest line.
          codeScrolls: [...document.querySelectorAll('.input_area pre')]
            .map(pre => ({pre, widest: Math.max(...pre.textContent.split('\n')
                                                 .map(l => l.length))}))
            .filter(({pre, widest}) => widest <= 100 && !pre.closest('details:not([open])')
                                       && pre.scrollWidth > pre.clientWidth + 1)
            .map(({widest}) => widest),
          // Printed output that scrolls sideways (it should wrap): its first 60 characters.
          outputScrolls: [...document.querySelectorAll('.output_area pre')]
            .filter(pre => !pre.closest('details:not([open])')
                           && pre.scrollWidth > pre.clientWidth + 1)
            .map(pre => pre.textContent.slice(0, 60)),
          descriptions: [...document.querySelectorAll('.notebook-entry .description')]
            .map(p => ({text: p.textContent, html: p.innerHTML})),
          rootFont: parseFloat(getComputedStyle(document.documentElement).fontSize)};
})()"""


def _build(out: Path, *args: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "kit", "site", "--out", str(out), *args],
        cwd=REPO, capture_output=True, text=True, timeout=600,
        env={**os.environ, "COURSE_DATASET": "digits"},
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("sites")
    _build(root / "course", "--no-execute")
    _build(root / "fixture", "--notebooks", str(FIXTURE))
    return {"course": root / "course", "fixture": root / "fixture"}


@pytest.fixture(scope="module")
def browser() -> Browser:
    with Browser(CHROMIUM) as b:
        yield b


def _pages(site: Path) -> list[Path]:
    return [site / "index.html", *sorted(p for p in site.glob("*.html") if p.name != "index.html")]


def _visit(browser: Browser, page: Path, shot: str) -> dict:
    browser.goto(page.as_uri())
    facts = browser.evaluate(PAGE_FACTS)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser.screenshot(SCREENSHOTS / f"{shot}-top.png")
    browser.screenshot(SCREENSHOTS / f"{shot}-full.png", full_page=True)
    return facts


@pytest.mark.parametrize("which", ["course", "fixture"])
def test_every_page_works_offline(sites, browser, which):
    site = sites[which]
    for page in _pages(site):
        facts = _visit(browser, page, f"{which}-{page.stem}")
        where = f"{which}/{page.name}"
        assert facts["viewport"], where
        # Prose at a comfortable measure: 45-50 rem of text column.
        assert 45 <= facts["measure"] / facts["rootFont"] <= 52, (where, facts["measure"])
        # A check line longer than the column (FullyConnectedNets' ReLU kink check) wraps.
        assert facts["outputScrolls"] == [], (where, facts["outputScrolls"])
        _check_links(page, facts, where)
        # Every code line of up to ruff's 100 characters fits without scrolling.
        assert facts["codeScrolls"] == [], (where, facts["codeScrolls"])
        if page.name == "index.html":
            _check_descriptions(facts, where)
            continue
        assert facts["title"] and facts["title"] != "Notebook", where
        assert facts["preLineHeights"] in ([], [1.4]), (where, facts["preLineHeights"])
        assert "$$" not in facts["text"] and "\\frac" not in facts["text"], where
        _check_math(facts, where)
        _check_figures(facts, where)
        _check_spoilers(page, facts, where)
    # Nothing but the site's own files (and inline data) was asked for.
    foreign = [u for u in browser.requests if not u.startswith(("file://", "data:", "about:"))]
    assert foreign == [], foreign
    assert browser.failed == [], browser.failed


def _check_descriptions(facts: dict, where: str) -> None:
    # Each notebook's introduction is rendered Markdown: no literal ** or *word* markers.
    assert facts["descriptions"], where
    for description in facts["descriptions"]:
        text = description["text"]
        assert "**" not in text and not re.search(r"(^|\s)\*\w", text), (where, text)
        assert "KITMATH" not in text and "$" not in text, (where, text)


def test_markdown_in_a_description_is_rendered_on_the_index(sites, browser):
    facts = _visit(browser, sites["fixture"] / "index.html", "fixture-index-description")
    (description,) = facts["descriptions"]
    assert "<strong>tiny</strong>" in description["html"], description
    assert "<em>math</em>" in description["html"] and "<code>figure</code>" in description["html"]


def test_code_of_88_and_100_characters_fits_without_scrolling(sites, browser):
    # The fixture has one line of each width; the page's check is in PAGE_FACTS.
    facts = _visit(browser, sites["fixture"] / "SiteFixture.html", "fixture-code-width")
    assert "width_100" in facts["text"] and "width_88" in facts["text"]
    assert facts["codeScrolls"] == [], facts["codeScrolls"]


def _check_links(page: Path, facts: dict, where: str) -> None:
    for href in facts["links"]:
        parsed = urlparse(href)
        assert parsed.scheme in ("", "file"), (where, href)  # no link leaves the site
        if parsed.path:
            target = (page.parent / unquote(parsed.path)).resolve()
            assert target.is_file(), (where, href)
        elif parsed.fragment:
            # As a browser does: the fragment as written, else percent-decoded.
            fragment = parsed.fragment
            assert fragment in facts["ids"] or unquote(fragment) in facts["ids"], (where, href)


def _check_math(facts: dict, where: str) -> None:
    assert facts["maths"] > 0, f"{where}: no formula rendered"
    # Chromium lays MathML out natively: its display types say it understood the markup.
    displays = set(facts["mathDisplays"])
    assert displays <= {"math", "inline math", "block math"}, displays
    assert facts["mathEmpty"] == 0, where
    # A font with a MATH table first (sums drawn large), the browser's own last.
    for family in facts["mathFonts"]:
        assert "Math" in family.split(",")[0] and family.endswith("math"), (where, family)
    assert facts["mathCut"] == [], (where, facts["mathCut"])  # no limit of a sum clipped
    assert set(facts["casesAlign"]) <= {"left"}, (where, facts["casesAlign"])


def _check_figures(facts: dict, where: str) -> None:
    for figure in facts["figures"]:
        assert figure["complete"] and figure["natural"] > 0, (where, figure)
        # An alt text that says something: never nbconvert's "No description has been ...".
        assert figure["alt"].startswith("Figure"), (where, figure["alt"])
        density = figure["natural"] / figure["declared"]
        # At its resolution the figure fits its box: shown at its declared size, not shrunk.
        assert figure["natural"] <= density * figure["box"] + 1, (where, figure)
        assert abs(figure["shown"] - figure["declared"]) <= 1, (where, figure)


def _check_spoilers(page: Path, facts: dict, where: str) -> None:
    notebook = json.loads(page.with_suffix(".ipynb").read_text(encoding="utf-8"))
    hidden = _solution_and_answer_lines(notebook)
    if hidden:
        assert facts["spoilers"], f"{where}: solutions in the notebook but no spoiler block"
    for spoiler in facts["spoilers"]:
        assert spoiler["tag"] == "DETAILS" and not spoiler["open"], (where, spoiler)
    for line in hidden:  # a closed <details> keeps its text out of what the reader sees
        assert line not in facts["text"], (where, line)


def _solution_and_answer_lines(notebook: dict) -> list[str]:
    """Distinctive lines inside solution regions and answer cells (read from the .ipynb)."""
    lines = []
    for cell in notebook["cells"]:
        source = "".join(cell["source"]).splitlines()
        if "answer" in cell["metadata"].get("tags", []):
            lines += [s for s in source if len(s) > 40 and "$" not in s][:1]
            continue
        inside = False
        for s in source:
            if re.match(r"\s*# BEGIN SOLUTION", s):
                inside = True
            elif re.match(r"\s*# END SOLUTION", s):
                inside = False
            elif inside and len(s.strip()) > 20:
                lines.append(s.strip())
                break
    return lines


def test_a_training_cell_shows_its_final_progress_line_and_figures_are_retina(sites, browser):
    page = sites["fixture"] / "SiteFixture.html"
    facts = _visit(browser, page, "fixture-progress")
    assert re.search(r"epoch 2/2: \d+/\d+ iterations, loss=[\d.]+", facts["text"]), facts["text"]
    assert "0%|" not in facts["text"]
    densities = [f["natural"] / f["declared"] for f in facts["figures"]]
    assert densities and all(abs(d - 2) < 0.01 for d in densities), densities  # retina


def test_a_phone_gets_the_page_at_its_width(sites, browser):
    browser.send("Emulation.setDeviceMetricsOverride",
                 {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True})
    widths = {}
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)  # also when this test runs alone
    try:
        # Every page of both sites fits the phone's width: long formulas, code and
        # tracebacks (the fixture site's failing cells) scroll in their own boxes, not the
        # page (inline formulas in a list once widened it to 539 px).
        for which in ("course", "fixture"):
            for page in sorted(sites[which].glob("*.html")):
                browser.goto(page.as_uri())
                widths[f"{which}/{page.name}"] = browser.evaluate(
                    "document.documentElement.scrollWidth")
                if page.name == "index.html":
                    browser.screenshot(SCREENSHOTS / f"{which}-index-phone.png")
        browser.goto((sites["course"] / "FullyConnectedNets.html").as_uri())
        toc_columns = browser.evaluate(
            "getComputedStyle(document.querySelector('.toc > ul')).columnCount")
    finally:
        browser.send("Emulation.clearDeviceMetricsOverride")
    assert len(widths) > 1 and all(width <= 390 for width in widths.values()), widths
    assert toc_columns == "1"  # the contents in one column on a phone
