"""Whatever a study holds, its views draw it as text: no markup from a study file is ever
read as HTML, and no value, however odd, keeps a view from drawing."""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from html.parser import HTMLParser
from types import MappingProxyType

import hostile_study
import pytest
from hostile_study import hostile

import asynchpo as ah
from asynchpo._progress import progress_line
from asynchpo._summary import FinishedTrial, RunningTrial, Summary
from asynchpo.widgets._text import clock, markup, number, params, plain
from asynchpo.widgets._view import step_svg

pytest.importorskip("ipywidgets")

# the markup the view itself writes, and nothing else
TAGS = {"b", "code", "span", "div", "table", "tr", "td", "th", "svg", "line", "path", "text"}
ATTRIBUTES = {
    "style", "title", "colspan", "width", "height", "x", "y", "x1", "y1", "x2", "y2", "d",
    "font-size", "font-family", "text-anchor", "fill", "stroke", "stroke-width",
}  # fmt: skip
PARTS = ("title", "counts", "best", "plot", "running", "recent", "message")


class _Markup(HTMLParser):
    """What a browser would build from some HTML: its tags, attributes and text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str | None]] = []
        self.text: list[str] = []
        self.other: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attributes += attrs

    def handle_data(self, data):
        self.text.append(data)

    def handle_comment(self, data):
        self.other.append(f"<!--{data}")

    def handle_decl(self, decl):
        self.other.append(f"<!{decl}")

    def handle_pi(self, data):
        self.other.append(f"<?{data}")

    def unknown_decl(self, data):
        self.other.append(f"<![{data}")


def safe_text(markup_: str) -> tuple[str, list[str]]:
    """The text of ``markup_`` and its attribute values, after checking that its only tags and
    attributes are the view's own: no script, no image, no event handler, no link."""
    parser = _Markup()
    parser.feed(markup_)
    parser.close()
    assert set(parser.tags) <= TAGS, f"tags {set(parser.tags) - TAGS} in {markup_!r}"
    names = {name for name, _ in parser.attributes}
    assert names <= ATTRIBUTES, f"attributes {names - ATTRIBUTES} in {markup_!r}"
    assert not parser.other, f"{parser.other} in {markup_!r}"
    for name, value in parser.attributes:
        if name != "title":  # the view's own figures and styles, never a study's text
            assert value is not None and "<" not in value and "(" not in value, (name, value)
    titles = [value or "" for name, value in parser.attributes if name == "title"]
    return "".join(parser.text), titles


def drawn(w) -> dict[str, str]:
    return {name: getattr(w, name).value for name in PARTS}


def a_view():
    study = ah.Study(ah.Space(x=ah.Float(0, 1)))
    return study.widget()


TRACEBACK = (
    "error: Traceback (most recent call last):\n"
    '  File "objective.py", line 3, in objective\n'
    f"    raise ValueError({hostile('tb', 2)!r})\n"
    f"ValueError: {hostile('tb', 2)}"
)


def hostile_summary(active: bool) -> Summary:
    """A summary whose every field a study's text can reach holds hostile markup."""
    return Summary(
        name=hostile("name"),
        objective=hostile("obj", 1),
        direction=hostile("dir", 2),
        done=hostile("done", 3),
        failed=hostile("fail"),
        pruned=hostile("prun", 1),
        total=hostile("total", 2),
        active=active,
        reason=hostile("why", 3),
        error=hostile("err"),
        best_value=hostile("best", 1),
        best_number=hostile("bestn", 2),
        best_params=MappingProxyType({hostile("bkey", 3): hostile("bval")}),
        best_by_trial=((1, 0.5), (2, 0.25)),
        best_by_time=((0.5, 0.5), (1.5, 0.25)),
        running=MappingProxyType(
            {
                0: RunningTrial(0, {hostile("rkey", 1): hostile("rval", 2)}, hostile("wk", 3), 1),
                hostile("num"): RunningTrial(hostile("num"), {}),
            }
        ),
        recent=(
            FinishedTrial(hostile("fnum", 1), hostile("st", 1), hostile("val", 2), 0.5, TRACEBACK),
            FinishedTrial(3, "complete", 0.125, 1.0, hostile("det", 3)),
        ),
        run_started=1.0,
        last_time=2.0,
    )


@pytest.mark.parametrize("active", [False, True])
def test_every_text_the_view_draws_is_escaped_and_shown(active):
    w = a_view()
    w._render(hostile_summary(active), time.time())
    texts = {}
    for name, html in drawn(w).items():
        assert "cannot draw" not in html, (name, html)
        texts[name], titles = safe_text(html)
        if name == "recent":
            assert any(hostile("tb", 2) in t and "\n" in t for t in titles), titles
    expected = {
        "title": [hostile("name"), hostile("dir", 2), hostile("obj", 1)],
        "counts": [hostile("done", 3), hostile("total", 2), hostile("fail"), hostile("prun", 1)],
        "best": [hostile("obj", 1), hostile("best", 1), hostile("bestn", 2)],
        "plot": ["best " + hostile("obj", 1)],
        "running": [hostile("num"), hostile("wk", 3), hostile("rkey", 1), hostile("rval", 2)],
        "recent": [hostile("fnum", 1), hostile("st", 1), hostile("val", 2), hostile("det", 3)],
    }
    expected["best"] += [f"{hostile('bkey', 3)}={hostile('bval')}"]
    expected["recent"] += ["error: ValueError: " + hostile("tb", 2)]
    if active:
        assert texts["message"] == ""
    else:
        expected["message"] = ["run stopped: " + hostile("err")]
        expected["counts"] += ["run " + hostile("why", 3)]
    for name, wanted in expected.items():
        for text in wanted:
            assert text in texts[name], (name, text, texts[name])
    assert list(w.trial_choice.options) == [0]  # trial numbers only


def test_the_direction_is_drawn_as_one_of_its_two_words_only():
    w = a_view()
    for word in ("minimize", "maximize"):
        w._render(Summary(name="s", direction=word), time.time())
        assert safe_text(w.title.value)[0] == f"s: {word} value"
    w._render(Summary(name="s", direction="maximize<b>"), time.time())
    text = safe_text(w.title.value)[0]
    assert text == "s: unknown direction maximize<b> value"
    w._render(Summary(name="s", direction=None), time.time())
    assert safe_text(w.title.value)[0] == "s: unknown direction None value"


class _Unprintable:
    def __str__(self):
        raise RuntimeError("no str")

    def __repr__(self):
        raise RuntimeError("no repr")


ODD = [
    None,
    True,
    -0.0,
    10**5000,  # past str()'s limit on digits
    -(10**400),  # past a float
    2**63,
    1e308,
    math.nan,
    -math.inf,
    [1, {"a": "<b>x</b>"}],
    {"k": None},
    b"\x00<b>",
    _Unprintable(),
    "\x1b]0;title\x07\x1b[2J\u202eevil\r\n",
    "<b>" * 100_000,
    "",
]


SCALARS = (
    "name", "objective", "direction", "n_trials", "done", "complete", "failed", "pruned",
    "interrupted", "total", "done_at_start", "run_started", "last_time", "clock",
    "elapsed_before", "reason", "error", "best_value", "best_number",
)  # fmt: skip


@pytest.mark.parametrize("odd", ODD, ids=lambda v: type(v).__name__)
def test_a_view_draws_any_value_and_never_raises(odd):
    s = Summary(
        **dict.fromkeys(SCALARS, odd),
        best_params={"p": odd, "q": odd},
        best_by_trial=((odd, odd), (1, 0.5)),
        best_by_time=((odd, 1.0), odd),
        running={0: RunningTrial(odd, {"p": odd}, odd, odd), 1: RunningTrial(1, odd)},
        recent=(FinishedTrial(odd, odd, odd, odd, odd),),
    )
    w = a_view()
    for active in (False, True):
        w._render(dataclasses.replace(s, active=active), time.time())
        for name, html in drawn(w).items():
            assert "cannot draw" not in html, (name, html)
            assert len(html) < 20_000, (name, len(html))
            safe_text(html)
    assert isinstance(w.progress.value, int) and isinstance(w.progress.max, int)
    assert all(isinstance(n, int) for n in w.trial_choice.options)
    line = progress_line(s, time.time())
    assert line.isprintable() and len(line) < 2_000, line


@pytest.mark.parametrize("odd", ODD, ids=lambda v: type(v).__name__)
def test_text_helpers_never_raise(odd):
    for text in (
        plain(odd),
        plain(odd, 10, lines=True),
        number(odd),
        params({"a": odd}),
        clock(odd),
    ):
        assert isinstance(text, str) and len(text) <= 4 * 200
    assert "<" not in markup(odd) and '"' not in markup(odd)
    assert plain(odd).isprintable()


def test_numbers_are_drawn_as_before():
    assert (number(0.123456789), number(3), number(0.5, ".6g")) == ("0.1235", "3", "0.5")
    assert number(2**70) == "1.181e+21" and number(10**400) == "~1e+400"
    assert (clock(75.2), clock(3725), clock(None), clock(math.nan)) == ("1:15", "1:02:05", "-", "-")
    assert plain("x" * 300) == "x" * 199 + "\u2026"
    assert plain("a\x1b[2Jb\u202e") == "a\\x1b[2Jb\\u202e"


def test_the_plot_draws_its_labels_as_text():
    svg = step_svg([(1, 0.5)], 2, hostile("x", 2), hostile("y"))
    text, _ = safe_text(svg)
    assert hostile("x", 2) in text and hostile("y") in text


def test_a_flat_line_of_huge_values_draws():
    for y in (2.0**62, 1e308, -1e308, 5e-324):
        svg = step_svg([(1, y)], 1, "trials", "best")
        assert "<path" in svg and "cannot" not in svg, svg


def test_the_progress_line_is_plain_text_whatever_the_study_holds():
    line = progress_line(hostile_summary(False), time.time())
    assert line.isprintable()
    assert line.startswith(hostile("name") + ": " + hostile("done", 3) + "/")
    s = Summary(name="a\x1b]0;x\x07b", objective="\x1b[31mred", best_value=0.5, done=1)
    assert progress_line(s).startswith(
        "a\\x1b]0;x\\x07b: 1 done | 0 running | best \\x1b[31mred=0.5"
    )


def test_a_hostile_study_file_is_drawn_as_text(tmp_path):
    path = hostile_study.build(tmp_path / "hostile.db")
    loaded = 0
    for name, shown in hostile_study.SHOWN.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a loader may warn of the records it skips
            try:
                study = ah.Study.load(name, storage=path, read_only=True)
            except ValueError:
                assert name != hostile_study.LEGAL  # everything in it is allowed
                continue
            w = study.widget()
            w.draw()
        loaded += 1
        text = ""
        for part, html in drawn(w).items():
            assert "cannot draw" not in html, (part, html)
            text += safe_text(html)[0] + "\n"
        for wanted in shown:
            assert wanted in text, (name, wanted, text)
        assert hostile("dir") not in text or "unknown direction " + hostile("dir") in text
        assert progress_line(study.journal.summary()).isprintable()
    assert loaded >= 1
