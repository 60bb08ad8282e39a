"""Recipes fail before any work, naming the key to fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from curate.errors import ConfigError
from curate.recipe import load_recipe


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "r.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_default_recipe_loads() -> None:
    r = load_recipe()
    assert r.cutoff.isoformat() == "2022-11-30" and r.mix.buckets


def test_partial_recipe_overrides_only_its_keys(tmp_path: Path) -> None:
    r = load_recipe(write(tmp_path, "cutoff = 2021-01-01\n[score]\nthreshold = 0.9\n"))
    default = load_recipe()
    assert r.cutoff.isoformat() == "2021-01-01" and r.score.threshold == 0.9
    assert r.dedup == default.dedup and r.mix == default.mix and r.extract == default.extract


def test_buckets_replace_the_defaults(tmp_path: Path) -> None:
    r = load_recipe(write(tmp_path, '[[mix.buckets]]\nname = "all"\nwhere = "true"\n'))
    assert [b.name for b in r.mix.buckets] == ["all"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[score]\nthreshhold = 0.5\n", "score.'threshhold'"),
        ("[score]\nthreshold = 'high'\n", "score.threshold"),
        ("[score]\nthreshold = 1.5\n", "score.threshold"),
        ("cutoff = 'soon'\n", "cutoff"),
        ("[executor]\nkind = 'k8s'\n", "executor.kind"),
        ('[[mix.buckets]]\nname = "x"\nwhere = "no_such_column > 1"\n', "mix bucket 'x'"),
        ("this is = not toml [", "not valid TOML"),
    ],
)
def test_bad_recipes(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("'", ".").replace("(", r"\(")):
        load_recipe(write(tmp_path, text))


def test_missing_recipe_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read recipe"):
        load_recipe(tmp_path / "nope.toml")
