"""The README is the user's manual: it must not drift from the code."""

import re

from fcocr.config import ENVIRONMENT

from .conftest import REPO

README = (REPO / "README.md").read_text("utf-8")


def test_every_environment_variable_is_documented():
    documented = set(re.findall(r"^\| `([A-Z_]+)` \|", README, re.M))
    assert documented == set(ENVIRONMENT)


def test_ci_runs_the_readme_test_command_and_both_quick_starts_show_it():
    ci = (REPO / ".ci" / "run").read_text()
    assert "make test" in ci
    blocks = re.findall(r"```sh\n(.*?)```", README, re.S)
    assert sum("make demo" in b and "make test" in b for b in blocks) >= 2  # English and 快速开始
    assert "## 快速开始" in README


def test_console_events_in_the_readme_exist():
    for name in re.findall(r"`(oss-[a-z-]+\.json)`", README):
        assert (REPO / "events" / name).is_file(), name


def test_every_routable_capability_is_listed_with_its_configuration():
    from fcocr.recognizers import FAMILY_MODULES as PROVIDER_MODULES
    from fcocr.recognizers import family as provider
    from fcocr.recognizers.market import url_variable as market_url_variable

    for name in PROVIDER_MODULES:
        for cap_id, _cap in provider(name).capabilities.items():
            assert f"`{cap_id}`" in README, cap_id
            if name == "market":
                assert f"`{market_url_variable(cap_id.split('.', 1)[1])}`" in README


def test_every_normalized_field_is_documented():
    from fcocr.fields import FIELD_SETS

    for document_type, names in FIELD_SETS.items():
        row = next(line for line in README.splitlines() if line.startswith(f"| `{document_type}` |"))
        for name in names:
            assert f"`{name}`" in row, (document_type, name)


def test_the_capability_tables_are_generated_from_the_families_tables(tmp_path):
    from fcocr.tools import capabilities
    from fcocr.tools.cli import main

    assert capabilities.section(README) == capabilities.markdown(), \
        "README capability tables are stale: run .venv/bin/python -m fcocr.tools.cli capabilities --write README.md"
    stale = tmp_path / "README.md"
    stale.write_text(README.replace("| `market.text` |", "| `market.text-old` |"), "utf-8")
    assert main(["capabilities", "--check", str(stale)]) == 1
    assert main(["capabilities", "--write", str(stale)]) == 0 and stale.read_text("utf-8") == README
    assert main(["capabilities", "--check", str(stale)]) == 0
