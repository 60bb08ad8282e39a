"""The transformer pass (MiniLM encoder, CPU path in CI), the mgt-minilm-v1 head and the mgt-ensemble-v1 stack:
eval gates on a pinned slice of the validation split (of the full data in ../shared when it is there, and of the
in-repo subset always), batching that does not change numbers, devices, bad artefacts, reproducible head training,
and the pipeline scoring in batches."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from curate.errors import ConfigError, ModelError
from curate.resources import CLASSIFIERS_DIR
from curate.score import model as score_model
from curate.score.labelled import read_labelled, rows_digest, split_rows
from curate.score.metrics import auroc
from curate.score.model import evaluate, load_card
from curate.score.registry import forget_loaded, load_model
from curate.score.text import normalise, windows

from conftest import BAD_MGT_INPUTS, MGT_DATA, assert_gate, mgt_rows, needs_full_mgt, sample_page_labels, subset_gate

MINILM = "mgt-minilm-v1"
ENSEMBLE = "mgt-ensemble-v1"


@pytest.fixture(scope="module")
def validation() -> list[dict]:
    """The validation rows of the in-repo subset (tests/data/mgt/SOURCE.md)."""
    return split_rows(mgt_rows())[1]


@pytest.fixture(scope="module")
def encoder():
    from curate.score.encoder import MiniLMEncoder

    return MiniLMEncoder("cpu", layers=(2, 6), max_tokens=64, batch_size=4)


def gate_slice(rows: list[dict], gate: dict) -> list[dict]:
    return rows[:: gate["every"]]


@pytest.fixture(scope="module")
def full_validation() -> list[dict]:
    return split_rows(read_labelled(MGT_DATA))[1]


@pytest.mark.slow
@needs_full_mgt
@pytest.mark.parametrize("name", [MINILM, ENSEMBLE])
def test_eval_gate(name: str, full_validation: list[dict]) -> None:
    """classifiers/<name>/gate.json: floors measured on every k-th validation row of the full data (the whole split
    is in the card; the slice keeps CI short)."""
    gate = json.loads((CLASSIFIERS_DIR / name / "gate.json").read_text())
    rows = gate_slice(full_validation, gate)
    assert rows_digest(rows) == gate["slice_digest"], "validation data changed: re-measure and re-pin gate.json"
    assert_gate(name, evaluate(load_model(name, "cpu"), rows), gate)


@pytest.mark.slow
@pytest.mark.parametrize("name", [MINILM, ENSEMBLE])
def test_eval_gate_on_subset(name: str, validation: list[dict]) -> None:
    """The same models on a slice of the subset's validation rows, against floors measured there
    (tests/data/mgt/gate.json)."""
    gate = subset_gate(name)
    rows = gate_slice(validation, gate)
    assert rows_digest(rows) == gate["slice_digest"], "subset changed: re-run tests/data/mgt/build.py --measure"
    assert load_card(name)["validation"]["auroc"] == gate["card_auroc"], (
        "model re-measured: re-run tests/data/mgt/build.py --measure"
    )
    assert_gate(name, evaluate(load_model(name, "cpu"), rows), gate)


def test_cards_are_measured_on_the_pinned_split() -> None:
    fasttext_card = load_card("mgt-fasttext-v1")
    for name in (MINILM, ENSEMBLE):
        card = load_card(name)
        assert card["kind"] in name
        assert card["data"]["validation_digest"] == fasttext_card["data"]["validation_digest"]
        assert 0.5 < card["validation"]["auroc"] <= 1.0
        assert set(card["validation"]["per_length"]) == {"1 window (30-192 words)", "2+ windows (over 192 words)"}
    assert set(load_card(MINILM)["leave_one_out"]["generator"]) == set(fasttext_card["leave_one_out"]["generator"])


def test_device_resolution() -> None:
    import torch

    from curate.score.encoder import resolve_device

    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ConfigError, match="device must be one of"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA device"):
            resolve_device("cuda")


def test_sorted_batching_keeps_order_and_numbers(encoder) -> None:
    texts = [
        "short one",
        "a somewhat longer sentence about rivers and the sea " * 3,
        "x",
        "the committee met on tuesday to review the budget " * 20,  # truncated to 64 tokens
        "",
    ]
    feats = encoder.features(texts)
    assert feats.shape == (5, encoder.dim) and np.isfinite(feats).all()
    rev = encoder.features(texts[::-1])[::-1]
    np.testing.assert_allclose(feats, rev, atol=1e-5)
    one_by_one = np.vstack([encoder.features([t]) for t in texts])
    np.testing.assert_allclose(feats, one_by_one, atol=1e-4)
    assert max(encoder.token_counts(texts)) == 64
    assert encoder.features([]).shape == (0, encoder.dim)


def test_encoder_rejects_bad_settings() -> None:
    from curate.score.encoder import MiniLMEncoder

    with pytest.raises(ConfigError, match="max_tokens"):
        MiniLMEncoder("cpu", max_tokens=4096)
    with pytest.raises(ConfigError, match="layers"):
        MiniLMEncoder("cpu", layers=(9,))


@pytest.mark.parametrize(
    ("text", "language", "reason"),
    BAD_MGT_INPUTS,
)
@pytest.mark.parametrize("name", [MINILM, ENSEMBLE])
def test_bad_inputs(name: str, text: str, language: str | None, reason: str | None) -> None:
    score, why, _ = load_model(name, "cpu").score(text, language)
    if reason == "scored":
        assert why is None and score is not None and 0.0 <= score <= 1.0
    else:
        assert score is None and why == reason


def test_long_documents_are_scored_in_spread_windows(validation: list[dict]) -> None:
    model = load_model(MINILM, "cpu")
    long_text = " ".join(r["text"] for r in validation[:60])
    score, why, n = model.score(long_text, "en")
    assert why is None and 0.0 <= score <= 1.0
    assert n == model.max_windows < len(list(windows(normalise(long_text))))


def test_batch_scoring_equals_one_by_one(validation: list[dict]) -> None:
    model = load_model(ENSEMBLE, "cpu")
    texts = [r["text"] for r in validation[:12]] + ["too short"]
    together = model.score_many(texts)
    alone = [model.score(t) for t in texts]
    for (a, ra, na), (b, rb, nb) in zip(together, alone, strict=True):
        assert ra == rb and na == nb
        assert (a is None and b is None) or abs(a - b) < 1e-4


def copy_classifier(name: str, dest: Path) -> None:
    shutil.copytree(CLASSIFIERS_DIR / name, dest / name)


def test_missing_corrupt_or_misfit_head(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from safetensors.numpy import save_file

    monkeypatch.setattr(score_model, "CLASSIFIERS_DIR", tmp_path)
    forget_loaded()
    try:
        copy_classifier(MINILM, tmp_path)
        head = tmp_path / MINILM / "head.safetensors"
        head.write_bytes(b"\x00" * 64)
        with pytest.raises(ModelError, match=r"head\.safetensors is corrupt.*curate classifiers train"):
            load_model(MINILM, "cpu")
        save_file({"weight": np.zeros(3, dtype=np.float32)}, str(head))
        with pytest.raises(ModelError, match="does not fit the encoder"):
            load_model(MINILM, "cpu")
        head.unlink()
        with pytest.raises(ModelError, match=r"head\.safetensors is missing"):
            load_model(MINILM, "cpu")
    finally:
        forget_loaded()


def test_ensemble_refuses_a_retrained_member(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(score_model, "CLASSIFIERS_DIR", tmp_path)
    forget_loaded()
    try:
        for name in ("mgt-fasttext-v1", MINILM, ENSEMBLE):
            copy_classifier(name, tmp_path)
        card_path = tmp_path / MINILM / "card.json"
        card = json.loads(card_path.read_text())
        card["calibration"]["a"] += 0.5
        card_path.write_text(json.dumps(card))
        with pytest.raises(ModelError, match="fitted on another version of 'mgt-minilm-v1'"):
            load_model(ENSEMBLE, "cpu")
    finally:
        forget_loaded()


@pytest.mark.slow
def test_head_training_is_reproducible(tmp_path: Path) -> None:
    import subprocess
    import sys

    from safetensors.numpy import load_file

    rows = mgt_rows()[::4]
    small = tmp_path / "small.jsonl"
    small.write_text("\n".join(json.dumps(r) for r in rows))
    heads, cards = [], []
    for name in ("a", "b"):
        cmd = [sys.executable, "-m", "curate.cli", "classifiers", "train", "tiny-minilm"]
        cmd += ["--data", str(small), "--out", str(tmp_path / name), "--device", "cpu"]
        subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=600)
        heads.append(load_file(str(tmp_path / name / "head.safetensors")))
        cards.append(json.loads((tmp_path / name / "card.json").read_text()))
    for key in heads[0]:
        np.testing.assert_array_equal(heads[0][key], heads[1][key])
    assert cards[0]["validation"] == cards[1]["validation"]
    assert cards[0]["kind"] == "minilm" and cards[0]["data"]["rows"] == len(rows)


@pytest.mark.slow
def test_ensemble_leave_one_out_table(tmp_path: Path) -> None:
    """`--leave-one-out` gives the ensemble a table like its members': every generator and domain, AUROC in
    [0, 1] (None and no TPR where a test set has one class), and a card that is strict JSON."""
    import subprocess
    import sys

    rows = mgt_rows()[::4]
    small = tmp_path / "small.jsonl"
    small.write_text("\n".join(json.dumps(r) for r in rows))
    cmd = [sys.executable, "-m", "curate.cli", "classifiers", "train", "tiny-ensemble", "--kind", "ensemble"]
    cmd += ["--data", str(small), "--out", str(tmp_path / "e"), "--device", "cpu", "--leave-one-out"]
    subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=900)
    card = json.loads((tmp_path / "e" / "card.json").read_text(), parse_constant=pytest.fail)
    table = card["leave_one_out"]
    assert set(table["generator"]) == {str(r["generator"]) for r in rows if r["label"] == "machine"}
    assert set(table["domain"]) == {str(r["domain"]) for r in rows}
    cells = list(table["generator"].values()) + list(table["domain"].values())
    assert any(c["auroc"] is not None for c in cells)
    for c in cells:
        assert c["auroc"] is None or 0.0 <= c["auroc"] <= 1.0
    for c in table["generator"].values():
        assert (c["tpr_at_1pct_fpr"] is None) == (c["auroc"] is None)


def test_score_step_batches_in_order(validation: list[dict]) -> None:
    from datatrove.data import Document

    from curate.score.step import ScoreStep

    docs = [
        Document(text=r["text"], id=str(i), metadata={"record_type": "response"}) for i, r in enumerate(validation[:7])
    ]
    docs.insert(3, Document(text="", id="empty", metadata={"record_type": "response"}))
    step = ScoreStep(MINILM, "cpu", batch_docs=3)
    out = list(step.run(iter(docs)))
    assert [d.id for d in out] == [d.id for d in docs]
    assert out[3].metadata["mgt_reason"] == "not_scored" and "mgt_score" not in out[3].metadata
    model = load_model(MINILM, "cpu")
    for d in out[:3] + out[4:]:
        assert d.metadata["mgt_model"] == MINILM
        assert abs(d.metadata["mgt_score"] - model.score(d.text)[0]) < 1e-4


def test_recipe_and_cli_device_checks(tmp_path: Path) -> None:
    import torch
    from typer.testing import CliRunner

    from curate.cli import app
    from curate.recipe import load_recipe

    bad = tmp_path / "bad.toml"
    bad.write_text('[score]\ndevice = "gpu0"\n')
    with pytest.raises(ConfigError, match=r"score\.device"):
        load_recipe(bad)
    if not torch.cuda.is_available():
        ensemble = tmp_path / "ensemble.toml"
        ensemble.write_text(f'[score]\nmodel = "{ENSEMBLE}"\n')
        result = CliRunner().invoke(app, ["run", "--out", str(tmp_path / "o"), "-r", str(ensemble), "--device", "cuda"])
        assert result.exit_code == 2 and "no CUDA device" in result.output


@pytest.mark.slow
def test_pipeline_with_the_ensemble(sample_con, tmp_path: Path) -> None:
    """The recipe picks the classifier and device; scores land in the store under its name, and on the sample
    crawl's planted pages (validation texts inside real-looking HTML) the ensemble separates machine from human
    text at least as well as the fastText model did in the default run."""

    from curate.recipe import load_recipe, with_device
    from curate.resources import SAMPLE_DIR
    from curate.run.commands import run
    from curate.store import open_store

    recipe = tmp_path / "ensemble.toml"
    recipe.write_text(f'[score]\nmodel = "{ENSEMBLE}"\nbatch_docs = 32\n')
    r = run(
        [str(SAMPLE_DIR / "generated" / "sample-crawl.warc.gz")],
        tmp_path / "out",
        with_device(load_recipe(recipe), "cpu"),
    )
    con = open_store(r.store)
    try:
        versions = json.loads(con.execute("SELECT versions_json FROM runs").fetchone()[0])
        assert versions["mgt_model"] == f"{ENSEMBLE} device=cpu"
        models = con.execute("SELECT DISTINCT mgt_model FROM documents WHERE mgt_score IS NOT NULL").fetchall()
        assert models == [(ENSEMBLE,)]
        query = "SELECT url, mgt_score FROM documents WHERE crawl_id = 'CURATE-SAMPLE-2024' AND mgt_score IS NOT NULL"
        ensemble_scores = dict(con.execute(query).fetchall())
    finally:
        con.close()
    fasttext_scores = dict(sample_con.execute(query).fetchall())
    machine = {page for page, label in sample_page_labels().items() if label == "machine"}
    urls = sorted(set(ensemble_scores) & set(fasttext_scores))
    assert len(urls) > 100
    labels = [u.rsplit("/", 1)[1].removesuffix(".html") in machine for u in urls]
    auc_ensemble = auroc(labels, [ensemble_scores[u] for u in urls])
    auc_fasttext = auroc(labels, [fasttext_scores[u] for u in urls])
    assert auc_ensemble >= auc_fasttext - 0.01, (auc_ensemble, auc_fasttext)


def test_classifiers_list() -> None:
    from typer.testing import CliRunner

    from curate.cli import app

    result = CliRunner().invoke(app, ["classifiers", "list"])
    assert result.exit_code == 0
    lines = {line.split()[0]: line.split() for line in result.output.splitlines()[1:]}
    assert lines["mgt-fasttext-v1"][1] == "fasttext" and lines[MINILM][1] == "minilm"
    assert lines[ENSEMBLE][1] == "ensemble" and "mgt-minilm-v1" in lines[ENSEMBLE]


def test_window_aggregation() -> None:
    from curate.score.minilm_model import aggregate

    probs = np.array([0.5, 0.99, 0.2, 0.2, 0.9])
    owner = np.array([0, 0, 1, 1, 2])
    assert aggregate(probs, owner, 3, "mean_prob") == pytest.approx([0.745, 0.2, 0.9])
    by_logit = aggregate(probs, owner, 3, "mean_logit")
    assert by_logit[1:] == pytest.approx([0.2, 0.9])
    assert by_logit[0] == pytest.approx(1 / (1 + np.sqrt(1 / 99)))  # a confident window pulls harder
    assert by_logit[0] > 0.745


@pytest.mark.slow
def test_bfloat16_numerics_stay_close(validation: list[dict]) -> None:
    """CUDA runs the encoder in bfloat16; CI has no GPU, so the same numerics are checked on the CPU."""
    from curate.score.encoder import MiniLMEncoder
    from curate.score.minilm_model import MiniLMModel

    fp32 = load_model(MINILM, "cpu")
    assert fp32.encoder.precision == "fp32"
    params = fp32.card["minilm_params"]
    bf16 = MiniLMModel(
        MINILM, fp32.card, MiniLMEncoder("cpu", params["layers"], params["max_tokens"], precision="bf16"), fp32.head
    )
    texts = [r["text"] for r in validation[:16]]
    a = [s for s, _, _ in fp32.score_many(texts)]
    b = [s for s, _, _ in bf16.score_many(texts)]
    assert max(abs(x - y) for x, y in zip(a, b, strict=True) if x is not None) < 0.05
    with pytest.raises(ConfigError, match="precision"):
        MiniLMEncoder("cpu", precision="fp8")
