"""The README documents every command and every reason code; the schema defines each code once."""

from __future__ import annotations

from curate.resources import REPO_ROOT
from curate.schema import REASON_HELP, Reason

from test_cli import COMMANDS

README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_has_the_two_commands() -> None:
    assert "make run" in README and "make test" in README


def test_every_command_is_in_the_readme() -> None:
    for path, _ in COMMANDS:
        assert f"curate {' '.join(path)}" in README, path


def test_every_reason_is_documented() -> None:
    for reason in Reason:
        assert reason in REASON_HELP
        assert f"`{reason.value}`" in README, reason
