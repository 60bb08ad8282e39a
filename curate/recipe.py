"""Recipes: what a run does, as data (TOML), validated before any work starts.

``load_recipe(path)`` reads a TOML file over the defaults of ``pipelines/default.toml``: a partial recipe only
overrides the keys it sets. Unknown keys, wrong types and impossible values raise :class:`ConfigError` with
the key's dotted name, so a typo fails at once instead of silently doing the default.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import MISSING, dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any, get_type_hints

from curate.dedup.minhash import SCHEMES
from curate.dedup.params import DedupParams, recall_bands
from curate.errors import ConfigError
from curate.licenses.policy import get_policy, load_domain_reviews
from curate.predicate import check_predicate
from curate.resources import DEFAULT_RECIPE
from curate.schema import TOKEN_FORMATS, MgtReference, MixFormat
from curate.score.encoder import DEVICES
from curate.tokens.tokenizer import canonical_spec


@dataclass(frozen=True)
class ExecutorConfig:
    """Where tasks run: ``local``, ``slurm`` or ``ray`` (datatrove executors)."""

    kind: str
    tasks: int
    workers: int
    partition: str
    time: str
    mem_per_cpu_gb: int
    gpus_per_task: int
    env_command: str
    duckdb_memory: str
    work: str  # where stage-1 tasks write shards, markers and logs: "" = STORE/work; else a folder or fsspec URL


@dataclass(frozen=True)
class ReadConfig:
    """What ``curate decide`` does with records the reader could read but found damaged (``documents.flags``), and
    how often ingest tries a remote input that does not answer."""

    truncated: str
    attempts: int  # tries to open a remote input before it is quarantined as unreachable_input
    backoff_s: float  # wait before the second try, doubled before each next one


@dataclass(frozen=True)
class ExtractConfig:
    """HTML → text and language id (ingest), and the length and language rules (decide)."""

    extractor: str
    min_chars: int
    languages: list[str]
    page_dates: bool
    max_payload_bytes: int
    timeout_s: float


@dataclass(frozen=True)
class ScoreConfig:
    """P(model-generated) scoring (ingest) and the rule that judges post-cutoff records by it (decide)."""

    model: str
    device: str
    batch_docs: int
    rule: str
    reference: str
    reference_quantile: float
    min_reference: int
    threshold: float
    pre_cutoff_extreme: float
    pre_cutoff_drop: bool
    site_rule: bool
    site_min_pages: int
    site_alpha: float
    site_quantile: float
    keep_unscored_post_cutoff: bool
    keep_unknown_date: bool


@dataclass(frozen=True)
class OptoutConfig:
    """Opt-out signals are always recorded; ``honour`` drops records carrying one in the record itself,
    ``honour_site`` those whose site opts out in the robots.txt / tdmrep.json snapshots (retroactive)."""

    honour: bool
    robots_dir: str
    tdmrep_dir: str
    snapshot_date: str
    honour_site: bool


@dataclass(frozen=True)
class LicenseConfig:
    """Licence inclusion policy (``licenses/policies.toml``) and an optional domain review CSV."""

    policy: str
    domain_review: str


@dataclass(frozen=True)
class DedupConfig:
    """Exact and MinHash-LSH near deduplication; the earliest capture anchors its cluster."""

    exact: bool
    near: bool
    threshold: float
    num_perm: int
    ngram: int
    min_recall: float
    verify: str
    seed: int
    # recipes recorded before these keys existed get what their stores were made and checked with
    scheme: str = "words-v1"
    containment: float = 0.5
    tasks: int = 0  # LSH bucket tasks (contiguous band ranges): 0 = chosen for the executor (see dedup.buckets)


@dataclass(frozen=True)
class Bucket:
    """One bucket of the mix: kept documents matching ``where`` (SQL over ``documents``). ``weight`` is its share
    of the mix (normalised over the weighted buckets), ``tokens`` a token target; with neither, every document is
    taken once (see :mod:`curate.tokens.plan`)."""

    name: str
    where: str
    weight: float | None = None
    tokens: int | None = None


@dataclass(frozen=True)
class MixConfig:
    """Tokenized training mix."""

    tokenizer: str
    max_tokens_per_shard: int
    tokens: int
    max_copies: int
    bos_token: str
    eos_token: str
    formats: list[str]
    tasks: int
    batch_docs: int
    buckets: list[Bucket]


@dataclass(frozen=True)
class Recipe:
    """A whole configuration; every default lives in ``pipelines/default.toml`` (the one place defaults are
    written). ``source`` is the merged recipe as JSON, recorded with every ingest and decision."""

    name: str
    version: str
    cutoff: dt.date
    seed: int
    executor: ExecutorConfig
    read: ReadConfig
    extract: ExtractConfig
    score: ScoreConfig
    optout: OptoutConfig
    license: LicenseConfig
    dedup: DedupConfig
    mix: MixConfig
    source: str = ""

    @property
    def dedup_params(self) -> Any:
        """The dedup parameters (band split chosen for ``dedup.min_recall`` at ``dedup.threshold``)."""

        d = self.dedup
        bands, rows = recall_bands(d.threshold, d.num_perm, d.min_recall)
        return DedupParams(d.num_perm, d.ngram, bands, rows, d.seed, d.scheme)

    @property
    def digest(self) -> str:
        """SHA-256 of ``source``: what the store records to say which recipe an ingest, decision or mix used."""
        import hashlib

        return hashlib.sha256(self.source.encode()).hexdigest()

    @property
    def cutoff_datetime(self) -> dt.datetime:
        """The cutoff as an aware UTC datetime at midnight starting ``cutoff``."""
        return dt.datetime.combine(self.cutoff, dt.time(0, 0), tzinfo=dt.UTC)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    hints = get_type_hints(cls)
    names = {f.name for f in fields(cls)} - {"source"}
    unknown = sorted(set(data) - names)
    if where == "dedup." and "against" in unknown:
        raise ConfigError(
            "recipe key dedup.against was removed with the persistent store (store-v2): ingest the earlier crawl "
            "into the same store (curate ingest OLD... --store DIR), and dedup keeps the earliest capture of both"
        )
    missing = sorted(f.name for f in fields(cls) if f.name != "source" and f.name not in data and f.default is MISSING)
    if missing:
        raise ConfigError(f"recipe table {where.rstrip('.') or '(top level)'} lacks key {where}{missing[0]}")
    if unknown:
        raise ConfigError(f"unknown recipe key {where}{unknown[0]!r}; known keys here: {', '.join(sorted(names))}")
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        kwargs[name] = _coerce(hints[name], value, f"{where}{name}")
    return cls(**kwargs)


def _coerce(tp: Any, value: Any, key: str) -> Any:
    if is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"recipe key {key!r} must be a table")
        return _build(tp, value, f"{key}.")  # type: ignore[arg-type]
    if tp is dt.date:
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            return value
        try:
            return dt.date.fromisoformat(str(value))
        except ValueError:
            raise ConfigError(f"recipe key {key!r} must be a date like 2022-11-30, got {value!r}") from None
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"recipe key {key!r} must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"recipe key {key!r} must be an integer, got {value!r}")
        return value
    if tp in (float | None, int | None):  # optional keys: absent means None
        return _coerce(float if tp == float | None else int, value, key)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"recipe key {key!r} must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"recipe key {key!r} must be a string, got {value!r}")
        return value
    if tp == list[str]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"recipe key {key!r} must be a list of strings")
        return list(value)
    if tp == list[Bucket]:
        if not isinstance(value, list):
            raise ConfigError(f"recipe key {key!r} must be an array of tables ([[mix.buckets]])")
        return [_build(Bucket, v, f"{key}[{i}].") for i, v in enumerate(value)]
    raise ConfigError(f"recipe key {key!r} has an unsupported type")  # pragma: no cover


MAX_ATTEMPTS = 20  # read.attempts: more tries than this only delay the report of an input that is gone
MAX_BACKOFF_S = 600.0  # read.backoff_s: the first wait; with doubling, 20 tries would wait for days


def _validate(r: Recipe) -> None:
    if r.executor.kind not in ("local", "slurm", "ray"):
        raise ConfigError(f"executor.kind must be local, slurm or ray, got {r.executor.kind!r}")
    if r.executor.kind == "slurm" and not r.executor.partition:
        raise ConfigError("executor.partition is required with executor.kind = 'slurm'")
    if r.executor.gpus_per_task < 0:
        raise ConfigError(f"executor.gpus_per_task must be >= 0, got {r.executor.gpus_per_task}")
    if "://" in r.executor.work:
        import fsspec

        if r.executor.work.split("://", 1)[0] not in fsspec.available_protocols():
            raise ConfigError(
                f"executor.work {r.executor.work!r}: unknown storage protocol (a local folder, or an fsspec URL "
                f"such as s3://bucket/prefix)"
            )
    if r.executor.tasks < 0 or r.executor.workers < 1:
        raise ConfigError("executor.tasks must be >= 0 (0 = one per file) and executor.workers >= 1")
    if r.read.truncated not in ("keep", "drop"):
        raise ConfigError(f"read.truncated must be keep or drop, got {r.read.truncated!r}")
    if not 1 <= r.read.attempts <= MAX_ATTEMPTS:
        raise ConfigError(f"read.attempts must be within [1, {MAX_ATTEMPTS}] (1: no retry), got {r.read.attempts}")
    if not 0.0 <= r.read.backoff_s <= MAX_BACKOFF_S:
        raise ConfigError(f"read.backoff_s must be within [0, {MAX_BACKOFF_S:g}] seconds, got {r.read.backoff_s}")
    if r.extract.extractor not in ("trafilatura", "resiliparse"):
        raise ConfigError(f"extract.extractor must be trafilatura or resiliparse, got {r.extract.extractor!r}")
    if r.extract.max_payload_bytes < 1024 or r.extract.timeout_s <= 0:
        raise ConfigError("extract.max_payload_bytes must be >= 1024 and extract.timeout_s > 0")
    if r.score.rule not in ("reference", "probability"):
        raise ConfigError(f"score.rule must be reference or probability, got {r.score.rule!r}")
    if not 0.5 <= r.score.reference_quantile <= 1.0 or r.score.min_reference < 10:
        raise ConfigError("score.reference_quantile must be within [0.5, 1] and score.min_reference >= 10")
    if r.score.reference not in [m.value for m in MgtReference]:
        raise ConfigError(
            f"score.reference must be one of {', '.join(m.value for m in MgtReference)}, got {r.score.reference!r}"
        )
    if not 0.0 < r.score.pre_cutoff_extreme <= 1.0:
        raise ConfigError(f"score.pre_cutoff_extreme must be within (0, 1], got {r.score.pre_cutoff_extreme}")
    if r.score.site_min_pages < 2 or not 0.0 < r.score.site_alpha < 1.0:
        raise ConfigError("score.site_min_pages must be >= 2 and score.site_alpha within (0, 1)")
    if not 0.5 <= r.score.site_quantile <= 1.0:
        raise ConfigError(f"score.site_quantile must be within [0.5, 1], got {r.score.site_quantile}")

    if r.score.device not in DEVICES:
        raise ConfigError(f"score.device must be one of {', '.join(DEVICES)}, got {r.score.device!r}")
    if r.score.batch_docs < 1:
        raise ConfigError(f"score.batch_docs must be >= 1, got {r.score.batch_docs}")
    if not 0.0 <= r.score.threshold <= 1.0:
        raise ConfigError(f"score.threshold must be within [0, 1], got {r.score.threshold}")
    if not 0.0 < r.dedup.threshold <= 1.0:
        raise ConfigError(f"dedup.threshold must be within (0, 1], got {r.dedup.threshold}")
    if r.dedup.num_perm < 16 or r.dedup.ngram < 1:
        raise ConfigError("dedup.num_perm must be >= 16 and dedup.ngram >= 1")
    if r.dedup.verify not in ("text", "signature", "exact", "none"):
        raise ConfigError(f"dedup.verify must be text, signature, exact or none, got {r.dedup.verify!r}")
    if r.dedup.scheme not in SCHEMES:
        raise ConfigError(f"dedup.scheme must be one of {', '.join(SCHEMES)}, got {r.dedup.scheme!r}")
    if not 0.0 < r.dedup.containment <= 1.0:
        raise ConfigError(f"dedup.containment must be within (0, 1], got {r.dedup.containment}")
    if not 0.5 <= r.dedup.min_recall < 1.0:
        raise ConfigError(f"dedup.min_recall must be within [0.5, 1), got {r.dedup.min_recall}")
    if r.dedup.tasks < 0:
        raise ConfigError(f"dedup.tasks must be >= 0 (0 = chosen for the executor), got {r.dedup.tasks}")
    if not r.mix.buckets:
        raise ConfigError("the recipe needs at least one [[mix.buckets]] table")
    names = [b.name for b in r.mix.buckets]
    if len(set(names)) != len(names):
        raise ConfigError(f"mix bucket names must be unique, got {names}")
    for b in r.mix.buckets:
        if not b.name.replace("_", "").replace("-", "").isalnum():
            raise ConfigError(f"mix bucket name {b.name!r} may hold only letters, digits, '-' and '_'")
        if b.weight is not None and b.tokens is not None:
            raise ConfigError(f"mix bucket {b.name!r}: give a weight or a token target (tokens), not both")
        if b.weight is not None and b.weight < 0:
            raise ConfigError(f"mix bucket {b.name!r}: weight must be >= 0")
        if b.tokens is not None and b.tokens < 1:
            raise ConfigError(f"mix bucket {b.name!r}: tokens must be >= 1")
    _validate_mix(r.mix)
    _check_bucket_sql(r.mix.buckets)

    get_policy(r.license.policy)
    if r.license.domain_review:
        load_domain_reviews(Path(r.license.domain_review))
    for key in ("robots_dir", "tdmrep_dir"):
        folder = getattr(r.optout, key)
        if folder and not Path(folder).is_dir():
            raise ConfigError(f"optout.{key} {folder!r} is not a folder")
    if (r.optout.robots_dir or r.optout.tdmrep_dir) and not r.optout.snapshot_date:
        raise ConfigError("optout.snapshot_date (YYYY-MM-DD) is required with optout.robots_dir or optout.tdmrep_dir")
    if r.optout.snapshot_date:
        try:
            dt.date.fromisoformat(r.optout.snapshot_date)
        except ValueError:
            raise ConfigError(f"optout.snapshot_date must be YYYY-MM-DD, got {r.optout.snapshot_date!r}") from None


def _validate_mix(m: MixConfig) -> None:
    known = [f.value for f in MixFormat]
    if not m.formats or len(set(m.formats)) != len(m.formats) or any(f not in known for f in m.formats):
        raise ConfigError(f"mix.formats must list distinct formats of {', '.join(known)}, got {m.formats}")
    if not any(f in TOKEN_FORMATS for f in m.formats):
        raise ConfigError(f"mix.formats must hold a token format ({', '.join(TOKEN_FORMATS)}), got {m.formats}")
    if m.max_tokens_per_shard < 1 or m.tokens < 0 or m.max_copies < 1:
        raise ConfigError("mix.max_tokens_per_shard and mix.max_copies must be >= 1, and mix.tokens >= 0")
    if m.tasks < 0 or m.batch_docs < 1:
        raise ConfigError("mix.tasks must be >= 0 (0 = one per executor worker) and mix.batch_docs >= 1")


def _check_bucket_sql(buckets: list[Bucket]) -> None:
    """Each bucket's where clause is one expression over the store's columns (checked before any work)."""
    for b in buckets:
        check_predicate(b.where, f"mix bucket {b.name!r}")


def with_device(recipe: Recipe, device: str) -> Recipe:
    """``recipe`` with ``score.device`` set to ``device`` (auto, cpu or cuda).

    Raises:
        ConfigError: an unknown device.
    """
    from dataclasses import replace

    if device not in DEVICES:
        raise ConfigError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    return replace(recipe, score=replace(recipe.score, device=device))


def load_recipe(path: Path | None = None) -> Recipe:
    """Load ``path`` (or the default recipe) over the defaults and validate it.

    Raises:
        ConfigError: the file is missing, is not TOML, or sets an unknown key or an invalid value.
    """
    try:
        base = tomllib.loads(DEFAULT_RECIPE.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as e:  # pragma: no cover - the repo ships it
        raise ConfigError(f"the default recipe {DEFAULT_RECIPE} is unreadable: {e}") from None
    data = base
    if path is not None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as e:
            raise ConfigError(f"cannot read recipe {path}: {e.strerror or e}") from None
        try:
            over = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"recipe {path} is not valid TOML: {e}") from None
        if "mix" in over and "buckets" in over["mix"]:
            base = dict(base)
            base["mix"] = {k: v for k, v in base["mix"].items() if k != "buckets"}
        data = _merge(base, over)
    recipe = _resolve_paths(_build(Recipe, data, ""), Path(path).parent if path is not None else DEFAULT_RECIPE.parent)
    _validate(recipe)
    data = _merge(
        data,
        {  # the source records the files as resolved, so a store's recipe still finds them from anywhere
            "license": {"domain_review": recipe.license.domain_review},
            "optout": {"robots_dir": recipe.optout.robots_dir, "tdmrep_dir": recipe.optout.tdmrep_dir},
            "mix": {"tokenizer": recipe.mix.tokenizer},
        },
    )
    return _with_source(recipe, data)


MIX_RECIPE_KEYS = ("name", "version", "seed", "executor", "mix")
"""The keys a mix recipe file (``curate mix --mix FILE``) may set."""


def load_mix_recipe(path: Path, base: Recipe) -> Recipe:
    """``base`` with the mix recipe file ``path`` over it: its name, version and seed, its ``[mix]`` (whose
    ``[[mix.buckets]]`` replace the base's) and, optionally, ``[executor]``; a tokenizer path is relative to the
    file's folder.

    Raises:
        ConfigError: the file is missing or not TOML, sets a key a mix recipe may not set, has no buckets, or
            sets an unknown key or an invalid value.
    """
    import json
    from dataclasses import replace

    try:
        over = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"cannot read mix recipe {path}: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"mix recipe {path} is not valid TOML: {e}") from None
    extra = sorted(set(over) - set(MIX_RECIPE_KEYS))
    if extra:
        raise ConfigError(f"mix recipe {path} sets {extra[0]!r}; a mix recipe sets only {', '.join(MIX_RECIPE_KEYS)}")
    if not isinstance(over.get("mix"), dict) or not over["mix"].get("buckets"):
        raise ConfigError(f"mix recipe {path} has no [[mix.buckets]]")
    data = json.loads(base.source)
    data["mix"] = {k: v for k, v in data["mix"].items() if k != "buckets"}
    data = _merge(data, over)
    recipe = _build(Recipe, data, "")
    recipe = replace(recipe, mix=replace(recipe.mix, tokenizer=canonical_spec(recipe.mix.tokenizer, Path(path).parent)))
    _validate(recipe)
    return _with_source(recipe, _merge(data, {"mix": {"tokenizer": recipe.mix.tokenizer}}))


def _resolve_paths(recipe: Recipe, base: Path) -> Recipe:
    """File and folder keys are relative to the recipe file's folder."""
    from dataclasses import replace

    def fix(p: str) -> str:
        return str((base / p).resolve()) if p and not Path(p).is_absolute() else p

    return replace(
        recipe,
        mix=replace(recipe.mix, tokenizer=canonical_spec(recipe.mix.tokenizer, base)),
        license=replace(recipe.license, domain_review=fix(recipe.license.domain_review)),
        optout=replace(
            recipe.optout, robots_dir=fix(recipe.optout.robots_dir), tdmrep_dir=fix(recipe.optout.tdmrep_dir)
        ),
    )


def _with_source(recipe: Recipe, data: dict[str, Any]) -> Recipe:
    import json
    from dataclasses import replace

    return replace(recipe, source=json.dumps(data, sort_keys=True, default=str))


INGEST_KEYS: tuple[str, ...] = (
    "extract.extractor",
    "extract.page_dates",
    "extract.max_payload_bytes",
    "extract.timeout_s",
    "score.model",
    "optout.robots_dir",
    "optout.tdmrep_dir",
    "optout.snapshot_date",
    "dedup.threshold",
    "dedup.num_perm",
    "dedup.ngram",
    "dedup.min_recall",
    "dedup.seed",
    "dedup.scheme",
)
"""Recipe keys that act while WARCs are read (extraction, the classifier, site opt-out snapshots, MinHash
signatures and band keys). Every ingest into one store uses the same values; ``curate decide``, ``dedup`` and
``mix`` refuse a recipe that changes them, since only re-reading the WARCs could apply the change."""


def ingest_settings(recipe: Recipe) -> dict[str, Any]:
    """The values of :data:`INGEST_KEYS` in ``recipe``, by dotted key."""
    out: dict[str, Any] = {}
    for key in INGEST_KEYS:
        table, name = key.split(".")
        out[key] = getattr(getattr(recipe, table), name)
    return out


def with_store_settings(recipe: Recipe, stored: dict[str, Any]) -> Recipe:
    """``recipe`` with each ingest-time key (:data:`INGEST_KEYS`) that it leaves at its default set to the value
    the store's documents were ingested with, so a store keeps its settings when curate's defaults change.

    ``stored`` is the store's record (``store_meta.ingest_settings``); a key it lacks was added after the store
    was made, and the store has that key's compatibility value (the value the field takes in recipes recorded
    before it existed), when there is one. A key the recipe sets to a value other than the default stays as set
    (and is refused by the store if it differs from the store's).
    """
    import json

    base = tomllib.loads(DEFAULT_RECIPE.read_text(encoding="utf-8"))
    data = json.loads(recipe.source) if recipe.source else {}
    out = recipe
    for key in INGEST_KEYS:
        table, name = key.split(".")
        section = getattr(out, table)
        field = next(f for f in fields(section) if f.name == name)
        if key in stored:
            value = _coerce(get_type_hints(type(section))[name], stored[key], key)
        elif field.default is not MISSING:
            value = field.default
        else:
            continue
        current = getattr(section, name)
        if current != value and current == base.get(table, {}).get(name, current):
            from dataclasses import replace

            out = replace(out, **{table: replace(section, **{name: value})})
            data = _merge(data, {table: {name: value}})
    return out if out is recipe else _with_source(out, data)


def recipe_from_source(source: str) -> Recipe:
    """The recipe recorded in a store (``runs.recipe_toml`` / ``decisions.recipe_toml``: the merged recipe as
    JSON), rebuilt and validated.

    Raises:
        ConfigError: the recorded recipe no longer validates (for example a file it names has moved).
    """
    import json

    data = json.loads(source)
    if isinstance(data.get("mix"), dict):  # recorded before a [mix] key existed: that key's default
        defaults = tomllib.loads(DEFAULT_RECIPE.read_text(encoding="utf-8"))["mix"]
        data["mix"] = {**{k: v for k, v in defaults.items() if k != "buckets"}, **data["mix"]}
    recipe = _build(Recipe, data, "")
    _validate(recipe)
    return _with_source(recipe, data)
