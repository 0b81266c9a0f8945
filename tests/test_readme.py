"""The README's claims stay true: its commands, its settings table, its coverage figure."""

from __future__ import annotations

import re
from pathlib import Path

from ecr_emulator.api.control import coverage
from ecr_emulator.api.operations import load_all
from ecr_emulator.config import SETTINGS

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_ci_runs_the_readme_test_command():
    ci = [line.strip() for line in (ROOT / ".ci/run").read_text().splitlines()
          if line.strip() and not line.strip().startswith(("#", "set ", "cd "))]
    command = ci[0].removeprefix("exec ").strip()
    assert command in README


def test_every_setting_is_in_the_readme():
    for s in SETTINGS:
        assert f"ECR_EMULATOR_{s.name.upper()}" in README, s.name
        assert "--" + s.name.replace("_", "-") in README, s.name


def test_coverage_figure_matches_the_model():
    load_all()
    c = coverage()
    m = re.search(r"ECR API operations implemented: \*\*(\d+)/(\d+)\*\*", README)
    assert m, "README lost its coverage figure"
    assert (int(m[1]), int(m[2])) == (c["implemented"], c["total"])
