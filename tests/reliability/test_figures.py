"""The README states the suite's figures as the suite counts them."""

from __future__ import annotations

from tests.reliability.conftest import ROOT
from tests.reliability.figures import figures, readme_section


def test_readme_states_the_suites_figures():
    readme = (ROOT / "README.md").read_text()
    assert readme_section() in readme, (
        "README's Reliability section is out of date; replace it with the output of "
        "`python -m tests.reliability.figures`")


def test_the_suite_is_as_large_as_promised():
    f = figures()
    assert f["bad_inputs"] >= 60 and f["faults"] >= 7 and f["load_runs"] >= 200
