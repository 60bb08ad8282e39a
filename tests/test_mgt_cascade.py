"""The cascade kind (mgt-cascade-v1: fastText settles what it is sure of, the ensemble scores the uncertain band)
and the ONNX Runtime int8 encoder the transformer uses on CPU: escalation of the band only, counted on real
validation texts of the in-repo subset; the stages' outputs; bad input and damaged artefacts; int8 against torch."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from curate.errors import ConfigError, ModelError
from curate.resources import CLASSIFIERS_DIR
from curate.score import model as score_model
from curate.score.cascade_model import CascadeModel, choose_band
from curate.score.labelled import prepare, read_labelled, rows_digest, split_rows
from curate.score.metrics import auroc
from curate.score.model import evaluate, load_card
from curate.score.registry import KINDS, TORCH_KINDS, forget_loaded, kind_for, load_model

from conftest import BAD_MGT_INPUTS, MGT_DATA, assert_gate, mgt_rows, needs_full_mgt

CASCADE = "mgt-cascade-v1"


@pytest.fixture(scope="module")
def validation() -> list[dict]:
    """The validation rows of the in-repo subset (groups no member trained on)."""
    return split_rows(mgt_rows())[1]


@pytest.fixture(scope="module")
def cascade() -> CascadeModel:
    model = load_model(CASCADE, "cpu")
    assert isinstance(model, CascadeModel)
    return model


def test_registered_and_pinned(cascade: CascadeModel) -> None:
    assert "cascade" in KINDS and "cascade" in TORCH_KINDS and kind_for(CASCADE) == "cascade"
    card = load_card(CASCADE)
    assert card["kind"] == "cascade" and card["name"] == CASCADE
    stages = {m["stage"]: m["name"] for m in card["members"]}
    assert stages == {"cheap": cascade.cheap.name, "expensive": cascade.expensive.name}
    assert 0.0 <= cascade.lo <= cascade.hi <= 1.0, "the fitted band is a real interval of probabilities"
    # the chosen band respects its budget on the texts it was chosen on, and the curve starts at the cheap member
    params = card["cascade_params"]
    budget = params["max_escalated_share"]
    chosen = next(p for p in card["band_curve"] if p["budget"] == budget)
    assert chosen["escalated_calibration_half"] <= budget
    assert card["band_curve"][0]["band"] is None and card["band_curve"][0]["escalated_heldout_half"] == 0.0
    held = card["heldout_half"]
    assert held[CASCADE]["auroc"] >= held[cascade.cheap.name]["auroc"], "escalating must not cost AUROC"


def test_escalates_only_the_band(cascade: CascadeModel, validation: list[dict], monkeypatch) -> None:
    """On the subset's real validation texts: the documents in the band, and only they, reach the transformer,
    whose encoder sees exactly their windows; the others keep the cheap member's probability."""
    _, docs, _ = prepare(validation)
    cheap = cascade.cheap_probs(docs)
    band = (cheap >= cascade.lo) & (cheap <= cascade.hi)
    assert 0 < band.sum() < len(docs) / 2, f"{band.sum()} of {len(docs)} in the band"

    minilm = next(m for m in cascade.expensive.members if m.kind == "minilm")  # type: ignore[attr-defined]
    seen: list[int] = []
    real = minilm.encoder.features
    monkeypatch.setattr(minilm.encoder, "features", lambda texts: seen.append(len(texts)) or real(texts))
    raw, esc = cascade.staged_scores(docs)
    monkeypatch.undo()

    np.testing.assert_array_equal(esc, band)
    escalated = [docs[i] for i in np.flatnonzero(band)]
    assert seen == [len(minilm.window_texts(escalated)[0])], "one encoder pass over the escalated windows only"
    raw = np.asarray(raw)
    np.testing.assert_array_equal(raw[~band], cheap[~band])
    expected = [cascade.expensive.calibrate(s) for s in cascade.expensive.raw_doc_scores(escalated)]
    np.testing.assert_allclose(raw[band], expected, atol=1e-9)


def test_score_many_is_the_deciding_stage_calibrated(cascade: CascadeModel, validation: list[dict]) -> None:
    texts = [r["text"] for r in validation[:40]]
    scored = cascade.score_many(texts, ["en"] * len(texts))
    flags = cascade.escalated(texts, ["en"] * len(texts))
    cheap = cascade.cheap.score_many(texts, ["en"] * len(texts))
    for (s, why, n), esc, (c, _, cn) in zip(scored, flags, cheap, strict=True):
        assert n == cn and (esc is None) == (s is None) == (c is None)
        if esc is False:
            assert s == pytest.approx(cascade.calibrate(c), abs=2e-6)
    assert cascade.escalated([""], ["en"]) == [None]


@pytest.mark.parametrize(("text", "language", "reason"), BAD_MGT_INPUTS)
def test_bad_inputs(cascade: CascadeModel, text: str, language: str | None, reason: str) -> None:
    score, why, _ = cascade.score(text, language)
    if reason == "scored":
        assert why is None and score is not None and 0.0 <= score <= 1.0
    else:
        assert score is None and why == reason


def test_band_choice_on_known_scores() -> None:
    """The band goes where the cheap member is unsure and the expensive one is right, within the budget."""
    rng = np.random.default_rng(0)
    y = np.arange(400) % 2 == 1
    cheap = np.where(y, rng.uniform(0.3, 1.0, 400), rng.uniform(0.0, 0.7, 400))  # overlap in [0.3, 0.7]
    expensive = np.where(y, 0.9, 0.1)
    lo, hi = choose_band(cheap, expensive, y, 0.6, 20)
    assert lo <= 0.31 and hi >= 0.69
    assert np.mean((cheap >= lo) & (cheap <= hi)) <= 0.6
    combined = np.where((cheap >= lo) & (cheap <= hi), expensive, cheap)
    assert auroc(y.tolist(), combined.tolist()) > auroc(y.tolist(), cheap.tolist())
    assert choose_band(cheap, expensive, y, 0.0, 20) == (2.0, 2.0), "no budget, no band"


def _copy(names: list[str], dest: Path) -> None:
    for name in names:
        shutil.copytree(CLASSIFIERS_DIR / name, dest / name)


def test_damaged_cards_and_retrained_members(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(score_model, "CLASSIFIERS_DIR", tmp_path)
    forget_loaded()
    try:
        _copy(["mgt-fasttext-v1", "mgt-minilm-v1", "mgt-ensemble-v1", CASCADE], tmp_path)
        card_path = tmp_path / CASCADE / "card.json"
        good = card_path.read_text()
        card_path.write_text("{not json")
        with pytest.raises(ModelError, match=r"card\.json is corrupt.*curate classifiers train mgt-cascade-v1"):
            load_model(CASCADE, "cpu")
        card = json.loads(good)
        del card["band"]
        card_path.write_text(json.dumps(card))
        with pytest.raises(ModelError, match="names no cheap and expensive member and band"):
            load_model(CASCADE, "cpu")
        card_path.write_text(good)
        member = tmp_path / "mgt-fasttext-v1" / "card.json"
        original = member.read_text()
        retrained = json.loads(original)
        retrained["calibration"]["b"] += 0.25
        member.write_text(json.dumps(retrained))
        with pytest.raises(ModelError, match="fitted on another version of 'mgt-fasttext-v1'"):
            load_model(CASCADE, "cpu")
        member.write_text(original)
        forget_loaded()  # the retrained member is cached by now
        (tmp_path / "mgt-fasttext-v1" / "model.bin").write_bytes(b"\x00" * 64)
        with pytest.raises(ModelError, match=r"model\.bin is corrupt"):
            load_model(CASCADE, "cpu")
    finally:
        forget_loaded()


def test_onnx_int8_agrees_with_torch(validation: list[dict]) -> None:
    """mgt-minilm-v1 on CPU runs the int8 ONNX encoder; its calibrated scores stay close to the torch fp32 ones
    its card was measured with (every other subset validation text: mean absolute difference 0.031, max 0.26;
    on 490 texts of the full split: AUROC 0.9639 against 0.9641, 0.019, 0.22)."""
    from curate.score.encoder import OnnxMiniLMEncoder, build_encoder
    from curate.score.minilm_model import MiniLMModel

    fp32 = load_model("mgt-minilm-v1", "cpu")
    assert isinstance(fp32, MiniLMModel)
    params = fp32.card["minilm_params"]
    encoder = build_encoder("cpu", params["layers"], params["max_tokens"], "onnx-int8")
    assert isinstance(encoder, OnnxMiniLMEncoder)
    int8 = MiniLMModel(fp32.name, fp32.card, encoder, fp32.head)
    labels, docs, _ = prepare(validation[::2])
    a = np.array([int8.calibrate(s) for s in int8.raw_doc_scores(docs)])
    b = np.array([fp32.calibrate(s) for s in fp32.raw_doc_scores(docs)])
    diff = np.abs(a - b)
    assert abs(auroc(labels, a.tolist()) - auroc(labels, b.tolist())) <= 0.01
    assert diff.mean() <= 0.045 and diff.max() <= 0.35, (diff.mean(), diff.max())


def test_runtime_choice() -> None:
    from curate.score.encoder import OnnxMiniLMEncoder, build_encoder

    assert isinstance(build_encoder("cpu", (2, 6), 64), OnnxMiniLMEncoder)
    with pytest.raises(ConfigError, match="runtime must be one of"):
        build_encoder("cpu", (2, 6), 64, "tensorrt")
    with pytest.raises(ConfigError, match="layers"):
        OnnxMiniLMEncoder(layers=(9,))


def test_damaged_onnx_cache_is_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cached model whose bytes no longer match the digest recorded at build time is rebuilt (re-quantized
    from the cached fp32 export) before it is loaded; the rebuild gives the same bytes."""
    from curate.score.encoder import CACHE_ENV, onnx_model_file

    built = onnx_model_file(True)
    cache = tmp_path / "cache"
    shutil.copytree(built.parent, cache / "onnx" / built.parent.name)
    monkeypatch.setenv(CACHE_ENV, str(cache))
    copy = onnx_model_file(True)
    assert copy.parent.parent.parent == cache
    good = copy.read_bytes()
    copy.write_bytes(good[: len(good) // 2])
    assert onnx_model_file(True).read_bytes() == good


@pytest.mark.slow
@needs_full_mgt
def test_eval_gate() -> None:
    """classifiers/mgt-cascade-v1/gate.json: floors on every 10th row of the full validation split."""
    gate = json.loads((CLASSIFIERS_DIR / CASCADE / "gate.json").read_text())
    rows = split_rows(read_labelled(MGT_DATA))[1][:: gate["every"]]
    assert rows_digest(rows) == gate["slice_digest"], "validation data changed: re-measure and re-pin gate.json"
    assert_gate(CASCADE, evaluate(load_model(CASCADE, "cpu"), rows), gate)
