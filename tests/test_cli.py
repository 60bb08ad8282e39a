"""The command line: help on every command, clear errors before any work, the run summary."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from curate.cli import app

runner = CliRunner()


def all_commands(group=None, prefix=()):
    group = group or get_command(app)
    for name, cmd in group.commands.items():
        if hasattr(cmd, "commands"):
            yield from all_commands(cmd, (*prefix, name))
        else:
            yield (*prefix, name), cmd


COMMANDS = list(all_commands())


@pytest.mark.parametrize(("path", "cmd"), COMMANDS, ids=lambda x: " ".join(x) if isinstance(x, tuple) else "")
def test_every_command_has_help_with_an_example(path, cmd) -> None:
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0
    assert cmd.help and "Example: curate" in cmd.help


def test_top_level_help() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0 and "run" in result.output and "Example" in result.output


def test_missing_input_fails_before_work(tmp_path: Path) -> None:
    result = runner.invoke(app, ["run", str(tmp_path / "nope.warc.gz"), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "does not exist" in result.output
    assert not (tmp_path / "out").exists()


def test_bad_recipe_fails_before_work(tmp_path: Path) -> None:
    recipe = tmp_path / "r.toml"
    recipe.write_text("[dedup]\nthreshold = 2\n")
    result = runner.invoke(app, ["run", "--out", str(tmp_path / "out"), "--recipe", str(recipe)])
    assert result.exit_code == 2 and "dedup.threshold" in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_run_prints_summary_and_refuses_to_overwrite(tmp_path: Path) -> None:
    from conftest import WARC_DIR

    warc = str(WARC_DIR / "warc-dolma" / "tests" / "data" / "warc" / "sample-0000.warc.gz")
    out = tmp_path / "out"
    result = runner.invoke(app, ["run", warc, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "24 records read" in result.output and "report:" in result.output
    assert (
        (out / "provenance.duckdb").exists()
        and (out / "report.html").exists()
        and (out / "mix" / "manifest.json").exists()
    )
    again = runner.invoke(app, ["run", warc, "--out", str(out)])
    assert again.exit_code == 2 and "--force" in again.output
