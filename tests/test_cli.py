"""The command line: help on every command, clear errors before any work, the run summary."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from curate.cli import app
from curate.resources import REPO_ROOT, SAMPLE_DIR

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
    warc = str(SAMPLE_DIR / "fixtures" / "warc-dolma" / "sample-0000.warc.gz")
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


def test_readme_example_output_is_what_run_prints(sample_run) -> None:
    """The README's example output is the code's: the sample run's summary, with the store in ./out."""
    import dataclasses
    import re

    from curate.run.commands import run_summary_lines

    out = Path("out")
    shown = dataclasses.replace(
        sample_run, store=out / "provenance.duckdb", mix=out / "mix", report=out / "report.html"
    )
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- generated: run-output -->\n```\n(.*?)```\n<!-- end generated -->", readme, re.S)
    assert block, "the README lost its generated run-output block"
    assert block.group(1).splitlines() == run_summary_lines(shown), (
        "the README's example output is out of date: run `python docs/build.py --run-output`"
    )


@pytest.mark.slow
def test_the_toolkit_commands_end_to_end(tmp_path: Path) -> None:
    import json

    store = str(tmp_path / "store")
    warcs = [str(SAMPLE_DIR / "fixtures" / "warc-warcio"), str(SAMPLE_DIR / "fixtures" / "warc-resiliparse")]
    r = runner.invoke(app, ["ingest", *warcs, "--store", store, "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["added"] == 52
    again = runner.invoke(app, ["ingest", warcs[0], "--store", store])
    assert again.exit_code == 0 and "already in the store, not read again" in again.output
    early = runner.invoke(app, ["mix", "--store", store, "--out", str(tmp_path / "mix")])
    assert early.exit_code == 2 and "curate decide" in early.output
    assert runner.invoke(app, ["dedup", "--store", store, "-q"]).stdout == ""
    d = runner.invoke(app, ["decide", "--store", store, "--json"])
    assert d.exit_code == 0, d.output
    decided = json.loads(d.stdout)
    assert decided["records"] == decided["kept"] + decided["dropped"] + decided["quarantined"] == 52
    m = runner.invoke(app, ["mix", "--store", store, "--out", str(tmp_path / "mix")])
    assert m.exit_code == 0 and f"{decided['kept']} documents" in m.output
    assert runner.invoke(app, ["mix", "--store", store, "--out", str(tmp_path / "mix")]).exit_code == 2
    rep = runner.invoke(app, ["report", "--store", store, "--mix", str(tmp_path / "mix")])
    assert rep.exit_code == 0 and (tmp_path / "store" / "report.html").exists()
    assert (tmp_path / "store" / "provenance" / "kept_documents.csv").exists()


def test_store_errors_are_messages(tmp_path: Path) -> None:
    r = runner.invoke(app, ["decide", "--store", str(tmp_path / "nothing-here")])
    assert r.exit_code == 2 and "not a curate store" in r.output
