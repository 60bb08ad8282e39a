"""The lexical MGT features (curate/score/lexical.py): values on hand-built documents, bad input, and the
features-only and fastText-stacked fits on the in-repo labelled subset; the registered classifier of that stack,
``mgt-lexical-v1`` (curate/score/lexical_model.py): loading, scoring, bad input and damaged artefacts, its card,
gate and shipped reference (its out-of-distribution gate is in tests/test_mgt_ood.py)."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from curate.errors import ModelError
from curate.resources import CLASSIFIERS_DIR
from curate.schema import REFERENCE_FILE, ScoreReason
from curate.score import lexical, lexical_model
from curate.score import model as score_model
from curate.score.labelled import prepare, read_labelled, rows_digest, split_rows
from curate.score.metrics import auroc, clipped_logit
from curate.score.model import evaluate, load_card
from curate.score.reference import build_reference, load_reference
from curate.score.registry import KINDS, forget_loaded, kind_for, load_model, registry, train
from curate.score.text import normalise

from conftest import MGT_DATA, MGT_SUBSET, MGT_SUBSET_DIR, assert_gate, mgt_rows, needs_full_mgt

LEXICAL = "mgt-lexical-v1"
FOLDER = CLASSIFIERS_DIR / LEXICAL
WEB_HUMAN = MGT_SUBSET_DIR / "web-human.jsonl.gz"


def test_features_of_a_hand_built_document() -> None:
    """Zipf statistics, rank buckets and punctuation rates follow from the word list, word by word."""
    table = lexical.word_table()
    the, unknown = table["the"], "qzxvkjwq"
    assert unknown not in table and the[1] == 0  # 'the' is among the 10 most frequent words
    f = dict(zip(lexical.FEATURES, lexical.features(["the", "the", ".", unknown, ","]), strict=True))
    assert f["zipf_mean"] == pytest.approx(2 * the[0] / 3)
    assert f["rank_top10"] == pytest.approx(2 / 3) and f["out_of_list"] == pytest.approx(1 / 3)
    assert f["punctuation_per_word"] == pytest.approx(2 / 3) and f["commas_per_word"] == pytest.approx(1 / 3)
    assert f["sentence_length_log_mean"] == pytest.approx(math.log(1.5))  # sentences of 2 and 1 words
    assert f["type_token_ratio"] == pytest.approx(2 / 3)


def test_common_words_score_higher_than_rare_ones() -> None:
    plain = normalise("The man went to the shop and he said that it was good for the day.")
    rare = normalise("Perspicacious lexicographers promulgate sesquipedalian neologisms notwithstanding obloquy.")
    z = lexical.FEATURES.index("zipf_mean")
    assert lexical.features(plain)[z] > lexical.features(rare)[z] + 1.0


@pytest.mark.parametrize(
    "text",
    [
        "",
        "....,,,,!!!!",
        "a" * 5000,
        "ha " * 2000,
        bytes(range(256)).decode("latin-1") * 4,
        "Le chat est assis sur le tapis, et il regarde la pluie tomber doucement sur la ville.",
        "机器学习是人工智能的一个分支。" * 20,
    ],
)
def test_bad_or_odd_input_gives_finite_features(text: str) -> None:
    """Empty, punctuation-only, repeated characters, binary and other languages: finite numbers, no error (the
    scoring rules upstream, :func:`curate.score.text.unscorable` and the language check, refuse such texts)."""
    row = lexical.features(normalise(text))
    assert len(row) == len(lexical.FEATURES) and all(math.isfinite(v) for v in row)
    assert lexical.feature_matrix([normalise(text)] * 2).shape == (2, len(lexical.FEATURES))


def test_missing_wordfreq_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    lexical.word_table.cache_clear()
    monkeypatch.setitem(sys.modules, "wordfreq", None)
    try:
        with pytest.raises(ModelError, match="pip install wordfreq"):
            lexical.word_table()
    finally:
        monkeypatch.undo()
        lexical.word_table.cache_clear()
    assert "the" in lexical.word_table()


def test_halves_split_by_group() -> None:
    rows = mgt_rows()
    by_group: dict[str, set[int]] = {}
    for r in rows:
        by_group.setdefault(r["group"], set()).add(lexical.half_of(r))
    assert all(len(h) == 1 for h in by_group.values())
    assert 0.3 < np.mean([lexical.half_of(r) for r in rows]) < 0.7


def _subset_auroc(fit: object) -> tuple[float, list[float]]:
    train, val = split_rows(mgt_rows())
    labels, docs, _ = prepare(val)
    scores = fit(train)(docs)  # type: ignore[operator]
    assert len(scores) == len(docs) and all(0.0 <= s <= 1.0 for s in scores)
    return auroc(labels, scores), scores


def test_features_alone_carry_signal_on_the_subset() -> None:
    """A logistic regression on the features alone, fitted on the subset's training groups, ranks its validation
    texts well above chance, and refits identically."""
    a, scores = _subset_auroc(lexical.fit_lexical)
    assert a >= 0.70, a
    assert _subset_auroc(lexical.fit_lexical)[1] == scores


@pytest.mark.slow
def test_stack_fit_is_deterministic_and_beats_chance() -> None:
    """The stacked fit (two single-threaded fastText fits in fresh processes, then the regression) gives the
    same scores twice and ranks the subset's validation texts well above chance."""
    a, scores = _subset_auroc(lexical.stack_fit)
    assert a >= 0.75, a
    assert _subset_auroc(lexical.stack_fit)[1] == scores


@pytest.mark.slow
def test_stack_fit_on_the_web_recipe() -> None:
    """With real human web pages, the halves follow v2's balanced web recipe: deterministic, above chance, and a
    different model from the v1-recipe stack."""
    from functools import partial

    from curate.score.labelled import read_web_human

    fit = partial(lexical.stack_fit, web=read_web_human(WEB_HUMAN))
    a, scores = _subset_auroc(fit)
    assert a >= 0.75, a
    assert _subset_auroc(fit)[1] == scores
    assert _subset_auroc(lexical.stack_fit)[1] != scores


# --- the registered classifier, mgt-lexical-v1 ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def card() -> dict:
    return load_card(LEXICAL)


@pytest.fixture(scope="module")
def gate() -> dict:
    return json.loads((FOLDER / "gate.json").read_text())


def test_lexical_is_a_registered_kind(card: dict) -> None:
    assert "lexical" in KINDS and kind_for(LEXICAL) == "lexical"
    entry = next(c for c in registry() if c["name"] == LEXICAL)
    assert entry["kind"] == card["kind"] == "lexical" and entry["languages"] == ["en"]
    assert entry["auroc"] == card["validation"]["auroc"]
    assert isinstance(load_model(LEXICAL), lexical_model.LexicalModel)


def test_shipped_model_clears_its_subset_gate(gate: dict) -> None:
    """The shipped model on the in-repo subset's validation rows (no ../shared needed): gate.json's floors."""
    subset = gate["subset"]
    validation = split_rows(read_labelled(MGT_SUBSET))[1]
    assert rows_digest(validation) == subset["slice_digest"], "subset changed: python benchmarks/mgt_lexical.py --gate"
    assert_gate(LEXICAL, evaluate(load_model(LEXICAL), validation), subset)


def test_card_weights_are_the_ones_that_score(card: dict) -> None:
    """A document's raw score is the card's regression on [mean fastText logit of the two halves, the features]:
    recomputed here from card.json and the half files, it matches the model's."""
    model = load_model(LEXICAL)
    assert isinstance(model, lexical_model.LexicalModel)
    _, docs, _ = prepare(split_rows(mgt_rows())[1][:40])
    stack = card["stack"]
    assert stack["inputs"] == ["fasttext_logit", *lexical.FEATURES]
    ft = np.mean([clipped_logit(h.raw_doc_scores(docs)) for h in model.halves], axis=0)
    x = np.hstack([ft[:, None], lexical.feature_matrix(docs)])
    z = (x - np.float32(stack["mean"])) / np.float32(stack["scale"])
    want = 1 / (1 + np.exp(-(z @ np.float32(stack["weight"]).astype(np.float64) + np.float32(stack["bias"]))))
    assert model.raw_doc_scores(docs) == pytest.approx(want.tolist(), abs=1e-9)
    assert {p.name for p in FOLDER.iterdir()} >= {*lexical.HALF_FILES, "card.json", "gate.json", REFERENCE_FILE}
    assert card["halves"]["files"] == list(lexical.HALF_FILES)


ENGLISH = (
    "The council met on Tuesday evening to discuss the budget for next year. Several members said the new "
    "library would cost far more than planned, and the mayor asked for a second estimate before any vote. "
) * 4


@pytest.mark.parametrize(
    ("text", "language", "reason"),
    [
        ("", None, ScoreReason.TOO_SHORT),
        ("too short to judge", "en", ScoreReason.TOO_SHORT),
        ("a" * 5000, None, ScoreReason.TOO_SHORT),
        ("!!!! " * 400, "en", ScoreReason.NOT_TEXT),
        (bytes(range(256)).decode("latin-1") * 20, "en", ScoreReason.NOT_TEXT),
        ("Le chat est assis sur le tapis et il regarde la pluie tomber doucement sur la ville. " * 10, None, None),
        ("机器学习是人工智能的一个分支。" * 40, None, None),
        (ENGLISH, "de", ScoreReason.LANGUAGE_OUT_OF_SCOPE),
    ],
)
def test_bad_input_gets_no_score_and_a_reason(text: str, language: str | None, reason: ScoreReason | None) -> None:
    """Empty, too short, repeated characters, symbol soup, binary read as Latin-1, other languages (detected or
    given): NULL with the shared scoring rules' reason, never a number."""
    score, why, windows = load_model(LEXICAL).score(text, language)
    assert score is None and windows == 0
    assert why == (reason or ScoreReason.LANGUAGE_OUT_OF_SCOPE)


def test_scores_are_probabilities_and_do_not_depend_on_the_batch() -> None:
    model = load_model(LEXICAL)
    val = split_rows(mgt_rows())[1]
    texts = [val[i]["text"] for i in prepare(val)[2][:30]] + [ENGLISH]  # scorable ones
    batch = model.score_many(texts, ["en"] * len(texts))
    assert all(s is not None and 0.0 <= s <= 1.0 and why is None and n >= 1 for s, why, n in batch)
    assert [model.score(t, "en") for t in texts] == batch
    assert len({s for s, _, _ in batch}) > 20  # a real model, not a constant


def test_ingest_score_step_uses_it() -> None:
    """The ingest scoring step with ``score.model = "mgt-lexical-v1"``: scores in input order, the model named on
    every scored record, the same numbers as the model's own."""
    from datatrove.data import Document

    from curate.score.step import ScoreStep

    val = split_rows(mgt_rows())[1]
    texts = [val[i]["text"] for i in prepare(val)[2][:5]]
    docs = [Document(text=t, id=str(i), metadata={"record_type": "response"}) for i, t in enumerate(texts)]
    docs.insert(2, Document(text="", id="empty", metadata={"record_type": "response"}))
    out = list(ScoreStep(LEXICAL, batch_docs=2).run(iter(docs)))
    assert [d.id for d in out] == [d.id for d in docs]
    assert out[2].metadata["mgt_reason"] == ScoreReason.NOT_SCORED.value
    model = load_model(LEXICAL)
    for d in out[:2] + out[3:]:
        assert d.metadata["mgt_model"] == LEXICAL and d.metadata["mgt_score"] == model.score(d.text)[0]


@pytest.fixture
def broken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A copy of the shipped classifier under a temporary classifiers/ folder, for damaging."""
    monkeypatch.setattr(score_model, "CLASSIFIERS_DIR", tmp_path)
    forget_loaded()
    shutil.copytree(FOLDER, tmp_path / "broken", ignore=shutil.ignore_patterns(REFERENCE_FILE))
    yield tmp_path / "broken"
    forget_loaded()


def test_a_corrupt_or_missing_half_is_a_clear_error(broken: Path) -> None:
    (broken / "half1.bin").write_bytes(b"not a fastText model")
    with pytest.raises(ModelError, match=r"half1\.bin is corrupt.*curate classifiers train broken"):
        load_model("broken")
    forget_loaded()
    (broken / "half0.bin").unlink()
    with pytest.raises(ModelError, match=r"half0\.bin is missing"):
        load_model("broken")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda c: c.pop("stack"), "no readable stack"),
        (lambda c: c["stack"]["inputs"].reverse(), "stacks other inputs"),
        (lambda c: c["stack"]["weight"].pop(), "stacks other inputs"),
        (lambda c: c["stack"]["scale"].__setitem__(0, 0.0), "non-finite"),
        (lambda c: c["stack"].__setitem__("bias", "high"), "no readable stack"),
    ],
)
def test_a_damaged_card_stack_is_a_clear_error(broken: Path, damage, message: str) -> None:
    card = json.loads((broken / "card.json").read_text())
    damage(card)
    (broken / "card.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match=message):
        load_model("broken")


def test_a_corrupt_card_is_a_clear_error(broken: Path) -> None:
    (broken / "card.json").write_text("{not json")
    with pytest.raises(ModelError, match="corrupt"):
        load_model("broken")


def test_gate_and_card_name_the_same_data(card: dict, gate: dict) -> None:
    assert gate["validation_digest"] == card["data"]["validation_digest"]
    assert gate["measured"] == {k: card["validation"][k] for k in gate["measured"]}
    assert card["features"]["names"] == list(lexical.FEATURES)
    readme = (FOLDER / "README.md").read_text()
    assert "CC-BY-SA 4.0" in readme and "curate classifiers train mgt-lexical-v1" in readme


def test_shipped_reference_is_computed_from_the_data_in_the_repo() -> None:
    """reference.json: the shipped model's scores on the web-human reference pages, with provenance; loading it
    checks it belongs to this card, and rebuilding it gives the same file."""
    ref = load_reference(LEXICAL)
    assert ref is not None and ref.n >= 40
    shipped = json.loads((FOLDER / REFERENCE_FILE).read_text())
    assert shipped["data"]["sha256"] == hashlib.sha256(WEB_HUMAN.read_bytes()).hexdigest()
    assert shipped["data"]["split"] == "reference" and "trafilatura" in shipped["extraction"]
    assert all(
        p.get("source") and p.get("commit") and p.get("site") and p["added"] < "2022-11-30" for p in shipped["pages"]
    )
    assert build_reference(LEXICAL, WEB_HUMAN, extraction=shipped["extraction"]) == shipped


@needs_full_mgt
def test_eval_gate_on_the_validation_split(gate: dict) -> None:
    """The in-distribution row: gate.json's floors on the full grouped validation split."""
    validation = split_rows(read_labelled(MGT_DATA))[1]
    assert rows_digest(validation) == gate["validation_digest"]
    assert_gate(LEXICAL, evaluate(load_model(LEXICAL), validation), gate)


@needs_full_mgt
@pytest.mark.slow
def test_training_reproduces_the_shipped_model(tmp_path: Path, card: dict) -> None:
    """`curate classifiers train mgt-lexical-v1` (here without the web pages, which only calibrate): byte-identical
    fastText halves and the same regression as shipped."""
    again = train(LEXICAL, MGT_DATA, tmp_path)
    for file in lexical.HALF_FILES:
        assert (
            hashlib.sha256((tmp_path / file).read_bytes()).digest()
            == hashlib.sha256((FOLDER / file).read_bytes()).digest()
        )
    assert again["stack"] == card["stack"] and again["data"] == card["data"]
