"""Which volunteers an origin in need asks, and where it sends visitors: plain values."""

from peerweb.policy import volunteers as rule

SITE = "site"


def report(name: str, load: float | None, version: int | None) -> dict[str, object]:
    return {"gateway": name, "load": load, "sites": {} if version is None else {SITE: version}}


def names(reports) -> list[str]:
    return [r["gateway"] for r in reports]


def test_an_unlimited_volunteer_counts_as_idle():
    assert rule.load_of(report("a", None, 1)) == 0.0
    assert rule.load_of(report("a", 0.5, 1)) == 0.5


def test_volunteers_with_the_current_version_are_ready():
    reports = [report("old", 0.1, 1), report("cur", 0.9, 2), report("none", 0.0, None)]
    assert names(rule.holding(reports, SITE, 2)) == ["cur"]


def test_the_least_loaded_others_are_asked_up_to_wanted():
    reports = [report("cur", 0.5, 2), report("busy", 0.9, None), report("calm", 0.1, 1),
               report("free", None, None), report("mid", 0.4, None)]
    assert names(rule.to_ask(reports, SITE, 2, wanted=3)) == ["free", "calm"]
    assert names(rule.to_ask(reports, SITE, 2, wanted=1)) == []  # enough are ready
    assert names(rule.to_ask(reports, SITE, 2, wanted=10)) == ["free", "calm", "mid", "busy"]


def test_equal_loads_are_asked_in_report_order():
    reports = [report("x", 0.2, None), report("y", 0.2, None), report("z", 0.2, None)]
    assert names(rule.to_ask(reports, SITE, 1, wanted=2)) == ["x", "y"]


def test_only_volunteers_that_answer_with_the_current_version_are_taken():
    asked = [report("a", 0.1, None), report("b", 0.2, None), report("c", 0.3, None)]
    assert names(rule.took(asked, [2, None, 1], 2)) == ["a"]


def test_visitors_go_to_the_least_loaded_first_equal_loads_in_order():
    ready = [report("p", 0.5, 2), report("q", None, 2), report("r", 0.5, 2),
             report("s", 0.1, 2)]
    assert names(rule.ranked(ready)) == ["q", "s", "p", "r"]
