"""report.html: written by aggregation into a sweep's and a run's folder, self-contained, with what each job found."""

import json
import re
from html.parser import HTMLParser

from grok_sweep.aggregate import aggregate
from grok_sweep.plot.style import COLORS
from grok_sweep.store.layout import REPORT_FILE
from test_aggregate import _job


class Page(HTMLParser):
    """Sections by heading; each section's table rows as lists of cell texts; every src and href."""

    def __init__(self, text: str):
        super().__init__()
        self.sections: dict[str, list[list[str]]] = {}
        self.links: list[str] = []
        self.styles: dict[str, str] = {}  # a table cell's text -> its inline style
        self._h2, self._in_h2, self._row, self._cell, self._style = None, False, None, None, ""
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.links += [a[k] for k in ("src", "href") if k in a]
        if tag == "h2":
            self._in_h2, self._h2 = True, ""
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell, self._style = "", a.get("style") or ""

    def handle_endtag(self, tag):
        if tag == "h2":
            self._in_h2 = False
            self.sections[self._h2] = []
        elif tag in ("td", "th") and self._row is not None:
            self._row.append(self._cell.strip())
            self.styles[self._cell.strip()] = self._style
            self._cell = None
        elif tag == "tr" and self._row is not None and self._h2 is not None:
            self.sections[self._h2].append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._in_h2:
            self._h2 += data
        elif self._cell is not None:
            self._cell += data


def test_a_sweeps_report_holds_every_job_and_its_failures_and_fetches_nothing(tmp_path):
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    _job(sweep, 1.0, 0.5, "completed", mem=50, grok=600)  # grokking
    _job(sweep, 1.0, 0.7, "completed", mem=50, grok=80)  # comprehension
    _job(sweep, 0.1, 0.5, "completed", mem=50, grok=None)  # memorization
    failed = _job(sweep, 0.1, 0.3, "failed", mem=50, grok=None, steps=200)
    result = json.loads((failed / "result.json").read_text())
    (failed / "result.json").write_text(json.dumps({**result, "error": "RuntimeError: out of cheese"}))
    _job(sweep, 0.1, 0.7, "diverged", mem=50, grok=None, steps=300)
    _, written = aggregate(sweep, echo=lambda *_: None)
    assert written["report"] == sweep / REPORT_FILE
    text = (sweep / REPORT_FILE).read_text()
    page = Page(text)
    assert not re.search(r"<script|<link|@import|url\(", text, re.I)  # nothing to run or fetch
    images = [s for s in page.links if s.startswith("data:")]
    assert len(images) >= 2 and all(s.startswith("data:image/png;base64,") for s in images)  # diagram, curves
    assert all(not re.match(r"[a-z]+:", s) or s.startswith("data:") for s in page.links)  # no http(s), no file:
    jobs = page.sections["Jobs (5)"]
    header, rows = jobs[0], {r[0]: dict(zip(jobs[0], r, strict=True)) for r in jobs[1:]}
    assert "phase" in header and len(rows) == 5
    assert rows["train_ratio=0.5,weight_decay=1.0"]["phase"] == "grokking"
    assert rows["train_ratio=0.7,weight_decay=1.0"]["phase"] == "comprehension"
    assert rows["train_ratio=0.5,weight_decay=0.1"]["phase"] == "memorization"
    assert {f"{name}/" for name in rows} <= set(page.links)  # each job links to its folder
    bad = {r[0]: r for r in page.sections["Failed, diverged or unreadable jobs"][1:]}
    assert bad["train_ratio=0.3,weight_decay=0.1"][1:] == ["failed", "RuntimeError: out of cheese"]
    assert bad["train_ratio=0.7,weight_decay=0.1"][1] == "diverged"
    assert COLORS["grokking"] in page.styles["grokking @600"]  # the phase table's cell, coloured by its phase
    assert any(k.startswith("swept ") for k, *_ in page.sections["What was run"])


def test_a_runs_report_says_what_it_found(tmp_path):
    run = _job(tmp_path, 1.0, 0.5, "completed", mem=50, grok=600)
    aggregate(run, echo=lambda *_: None)
    page = Page((run / REPORT_FILE).read_text())
    assert "Curves" in page.sections and "Result" in page.sections
    result = dict(r for r in page.sections["Result"] if len(r) == 2)
    assert result["status"] == "completed" and result["steps_run"] == "1000"
    assert any(s.startswith("data:image/png;base64,") for s in page.links)


def test_runs_and_sweeps_show_themselves_in_a_notebook_and_their_repr_stays_one_line(tmp_path):
    from grok_sweep import load_run, load_sweep

    sweep = tmp_path / "sweep"
    sweep.mkdir()
    grokked = _job(sweep, 1.0, 0.5, "completed", mem=50, grok=600)
    _job(sweep, 0.1, 0.5, "completed", mem=50, grok=None)
    aggregate(sweep, echo=lambda *_: None)
    s = load_sweep(sweep)
    assert "\n" not in repr(s) and repr(s) == f"Sweep({str(sweep)!r}, jobs=2)"
    page = Page(s._repr_html_())
    assert {"grokking @600", "memorization"} <= set(page.styles) and str(sweep / REPORT_FILE) in page.links
    assert any(link.startswith("data:image/png;base64,") for link in page.links)  # the phase diagram
    run = load_run(grokked)
    view = run._repr_html_()
    assert '<th class="l">phase</th><td class="l">grokking</td>' in view and "\n" not in repr(run)
