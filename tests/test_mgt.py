"""The MGT classifier: eval gates against pinned floors (on the full data in ../shared when it is there, and on
the in-repo subset always), scoring rules, reproducible training, bad artefacts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from curate.errors import ModelError
from curate.resources import CLASSIFIERS_DIR
from curate.score import model as score_model
from curate.score.labelled import Keep, prepare, read_labelled, rows_digest, split_rows
from curate.score.metrics import auroc, leave_one_out_table
from curate.score.model import evaluate, load_card
from curate.score.registry import forget_loaded, load_model
from curate.score.text import _PREAMBLE, normalise

from conftest import (
    BAD_MGT_INPUTS,
    MGT_DATA,
    MGT_SUBSET,
    MGT_SUBSET_DIR,
    assert_gate,
    mgt_rows,
    needs_full_mgt,
    sample_page_labels,
    subset_gate,
)

NAME = "mgt-fasttext-v1"
GATE = json.loads((CLASSIFIERS_DIR / NAME / "gate.json").read_text())


@pytest.fixture(scope="module")
def validation() -> list[dict]:
    """The validation rows of the in-repo subset (tests/data/mgt/SOURCE.md)."""
    return split_rows(mgt_rows())[1]


@needs_full_mgt
def test_eval_gate() -> None:
    """The gate of classifiers/mgt-fasttext-v1/gate.json, on the whole validation split of the full data."""
    validation = split_rows(read_labelled(MGT_DATA))[1]
    assert rows_digest(validation) == GATE["validation_digest"], (
        "validation data changed: re-measure and re-pin gate.json"
    )
    assert_gate(NAME, evaluate(load_model(NAME), validation), GATE)


def test_eval_gate_on_subset(validation: list[dict]) -> None:
    """The same model on the subset's validation rows, against floors measured there (tests/data/mgt/gate.json)."""
    gate = subset_gate(NAME)
    rows = validation[:: gate["every"]]
    assert rows_digest(rows) == gate["slice_digest"], "subset changed: re-run tests/data/mgt/build.py --measure"
    assert load_card(NAME)["validation"]["auroc"] == gate["card_auroc"], (
        "model re-measured: re-run tests/data/mgt/build.py --measure"
    )
    assert_gate(NAME, evaluate(load_model(NAME), rows), gate)


@needs_full_mgt
def test_subset_is_derived_from_the_full_data() -> None:
    """tests/data/mgt/build.py on the full data gives the in-repo subset and sample labels again."""
    import gzip
    import importlib.util

    spec = importlib.util.spec_from_file_location("mgt_subset_build", MGT_SUBSET_DIR / "build.py")
    assert spec and spec.loader
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    full = read_labelled(MGT_DATA)
    assert gzip.decompress(build.subset_bytes(build.pick(full))) == gzip.decompress(MGT_SUBSET.read_bytes())
    labels = MGT_SUBSET_DIR / "sample-crawl-labels.json"
    assert build.labels_text(build.sample_labels(full)) == labels.read_text()
    strata = {(r["source"], r["domain"], r["generator"]) for r in split_rows(full)[1]}
    assert {(r["source"], r["domain"], r["generator"]) for r in split_rows(mgt_rows())[1]} == strata


def test_card_matches_gate() -> None:
    card = json.loads((CLASSIFIERS_DIR / NAME / "card.json").read_text())
    assert card["data"]["validation_digest"] == GATE["validation_digest"]
    assert card["validation"]["auroc"] == GATE["measured"]["auroc"]


def test_sample_labels_name_the_planted_pages() -> None:
    """tests/data/mgt/sample-crawl-labels.json labels every page planted in the sample crawl, and only those."""
    import re

    from warcio.archiveiterator import ArchiveIterator

    from curate.resources import SAMPLE_DIR

    labels = sample_page_labels()
    planted = set()
    with (SAMPLE_DIR / "generated" / "sample-crawl.warc.gz").open("rb") as fh:
        for rec in ArchiveIterator(fh):
            m = re.fullmatch(
                r"https://[a-z-]+\.example/\d{4}/([0-9a-f]{10})\.html", rec.rec_headers["WARC-Target-URI"] or ""
            )
            planted |= {m.group(1)} if m else set()
    assert set(labels) == planted
    pages = json.loads((SAMPLE_DIR / "generated" / "planted.json").read_text())["pages"]
    assert len(labels) == pages and sorted(set(labels.values())) == ["human", "machine"]


def test_split_is_grouped() -> None:
    train, val = split_rows(mgt_rows())
    assert train and val and not {r["group"] for r in train} & {r["group"] for r in val}


def test_scoring_rules() -> None:
    model = load_model(NAME)
    assert model.score("too short to say", "en")[1] == "too_short_to_score"
    assert model.score("un texte en français " * 30, "fr")[1] == "language_out_of_scope"
    p, reason, n = model.score("The council met on Tuesday to discuss the new budget for the library. " * 40, "en")
    assert reason is None and 0.0 <= p <= 1.0 and n >= 2


def test_preambles_and_formatting_are_stripped() -> None:
    assert normalise("Sure! Here is the essay you asked for:\n**Title: Rivers**\nRivers flow 42 km.") == [
        "rivers",
        "flow",
        "00",
        "km",
        ".",
    ]


def test_normalise_matches_its_regex_definition() -> None:
    """The str.replace fast paths (ASCII and not) give the tokens of the regex definition: \\d -> 0, and every
    character that is not \\w, whitespace or an apostrophe split off."""
    import random
    import re

    def by_regex(text: str) -> list[str]:
        text = re.sub(r"\d", "0", text.replace("**", "").replace("##", "").lower())
        return re.sub(r"([^\w\s'])", r" \1 ", text).split()

    rng = random.Random(7)
    alphabet = [chr(i) for i in range(128)] + list("éßİﬁ٣৪²½–—“”’…€™😀\u00a0\u2028\u3000中文")
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 400))) for _ in range(2000)]
    texts += ["".join(chr(rng.randrange(128)) for _ in range(rng.randrange(1, 400))) for _ in range(2000)]
    texts += [r["text"] for r in mgt_rows()]
    for text in texts:
        stripped = _PREAMBLE.sub("", text, count=1)
        if stripped == text:  # the preamble rule is the same on both sides; compare the tokenising alone
            assert normalise(text) == by_regex(text), repr(text)


def test_training_is_reproducible(tmp_path: Path) -> None:
    import hashlib
    import subprocess
    import sys

    rows = mgt_rows()
    small = tmp_path / "small.jsonl"
    small.write_text("\n".join(json.dumps(r) for r in rows))
    digests, cards = [], []
    for name in ("a", "b"):  # one training per process, as `curate classifiers train` runs it
        cmd = [
            sys.executable,
            "-m",
            "curate.cli",
            "classifiers",
            "train",
            "tiny",
            "--kind",
            "fasttext",
            "--data",
            str(small),
            "--out",
            str(tmp_path / name),
        ]
        subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=600)
        digests.append(hashlib.sha256((tmp_path / name / "model.bin").read_bytes()).hexdigest())
        cards.append(json.loads((tmp_path / name / "card.json").read_text())["validation"])
    assert digests[0] == digests[1], "same data and command must give a byte-identical model"
    assert cards[0] == cards[1]


def test_leave_one_out_fits_are_reproducible() -> None:
    """Each leave-one-out fold is a fastText fit with default threads: two fits of the same rows must score alike
    (multi-threaded fastText training would not), so a card's table can be re-derived from the data."""
    from curate.score import fasttext_model as mgt_fasttext

    train, val = split_rows(mgt_rows())
    _, docs, _ = prepare(val[:60])
    fits = [mgt_fasttext.fit(train).raw_doc_scores(docs) for _ in range(2)]
    assert fits[0] == fits[1]
    assert len(set(fits[0])) > 10  # a real model, not a constant


def test_missing_and_corrupt_models_name_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(score_model, "CLASSIFIERS_DIR", tmp_path)
    forget_loaded()
    try:
        with pytest.raises(ModelError, match="curate classifiers train nope"):
            load_model("nope")
        shutil.copytree(CLASSIFIERS_DIR / NAME, tmp_path / "broken")
        (tmp_path / "broken" / "model.bin").write_bytes(b"not a model")
        with pytest.raises(ModelError, match=r"model\.bin"):
            load_model("broken")
    finally:
        forget_loaded()


def test_bad_labelled_data(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "x", "label": "robot"}\n')
    with pytest.raises(ModelError, match="row 1"):
        read_labelled(bad)


def test_leave_one_out_folds_leave_out_what_they_name() -> None:
    """Each fold's fitting data lacks exactly the generator's machine texts (or the domain), and its test set is
    the validation humans plus that generator (or the domain's validation texts)."""
    rows = mgt_rows()
    train, val = split_rows(rows)
    labels, _, kept = prepare(val)
    seen: list[tuple[int, set[str], set[str]]] = []

    def score_fold(keep: Keep) -> list[float]:
        fitted = [r for r in train if keep(r)]
        seen.append((len(fitted), {str(r["generator"]) for r in fitted}, {str(r["domain"]) for r in fitted}))
        return [float(y) for y in labels]  # a perfect scorer: every two-class cell is 1.0

    table = leave_one_out_table(rows, score_fold)
    gens = sorted({str(r["generator"]) for r in rows if r["label"] == "machine"})
    domains = sorted({str(r["domain"]) for r in rows})
    assert list(table["generator"]) == gens and list(table["domain"]) == domains
    for (n, fitted_gens, _), g in zip(seen[: len(gens)], gens, strict=True):
        assert g not in fitted_gens and "human" in fitted_gens
        assert n == sum(1 for r in train if not (r["label"] == "machine" and r["generator"] == g))
        cell = table["generator"][g]
        scored = [val[i] for i in kept]
        assert cell["n"] == sum(1 for r in scored if r["label"] == "human" or r["generator"] == g)
        assert cell["auroc"] == 1.0 and cell["tpr_at_1pct_fpr"] == 1.0
    for (_, _, fitted_domains), d in zip(seen[len(gens) :], domains, strict=True):
        assert d not in fitted_domains
    assert table["domain"]["essay"] == {"n": table["domain"]["essay"]["n"], "auroc": None}  # no human essays


def test_auroc_helper() -> None:
    assert auroc([True, False], [0.9, 0.1]) == 1.0
    assert auroc([True, False, True, False], [0.5, 0.5, 0.5, 0.5]) == 0.5


@pytest.mark.parametrize(
    ("text", "language", "reason"),
    BAD_MGT_INPUTS,
)
def test_bad_inputs_get_null_with_their_reason(text: str, language: str | None, reason: str | None) -> None:
    score, why, _ = load_model(NAME).score(text, language)
    if reason == "scored":
        assert why is None and score is not None and 0.0 <= score <= 1.0
    else:
        assert score is None and why == reason


def test_mixed_language_text_is_scored_as_its_detected_language() -> None:
    from curate.extract import detect_language

    mixed = (
        "The committee reviewed the budget in detail and approved it. " * 20 + "Le comité a approuvé le budget. " * 3
    )
    lang, _ = detect_language(mixed)
    score, why, n = load_model(NAME).score(mixed, lang)
    assert lang == "en" and score is not None and why is None and n >= 1
