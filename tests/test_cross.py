"""The cross-dataset protocol (#29): ``mer benchmark --train A --test B`` on fake releases."""

from __future__ import annotations

import json

import pytest

from mer.cli import main
from test_datasets_more import amg1608_release, merge_release, ravdess_release

TINY = ["--model", "crnn", "--model-arg", "channels=[8,16,16,16]", "--model-arg", "hidden=16", "--epochs", "1",
        "--device", "cpu", "-j", "1", "--quiet", "--set", "batch_size=8", "--set", "crop_seconds=2",
        "--set", "val_fraction=0.45"]


@pytest.fixture(scope="module")
def releases(tmp_path_factory):
    base = tmp_path_factory.mktemp("releases")
    return {"merge": merge_release(base / "merge"), "ravdess": ravdess_release(base / "ravdess"),
            "amg1608": amg1608_release(base / "amg")[0]}


def test_cross_train_one_test_two_beside_in_dataset_cv(releases, tmp_path, capsys):
    out = tmp_path / "cross"
    code = main(["benchmark", "--train", f"merge={releases['merge']}", "--test", "ravdess", "--test", "amg1608",
                 "--root", f"ravdess={releases['ravdess']}", "--root", f"amg1608={releases['amg1608']}",
                 "--folds", "2", "--out", str(out), "--cache-dir", str(tmp_path / "cache"), *TINY])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    doc = json.loads((out / "cross.json").read_text())
    rows = {r["test"]: r for r in doc["rows"]}
    assert list(rows) == ["merge (in-dataset 2-fold CV)", "ravdess", "amg1608"]
    assert rows["ravdess"]["n"] == 20 and set(rows["ravdess"]["scores"]) == {"quadrant_acc", "quadrant_f1"}
    amg = rows["amg1608"]["scores"]
    assert rows["amg1608"]["n"] == 10 and "valence_r" in amg and amg["quadrant_from_signs"] == 1.0
    assert "valence_r" in rows["merge (in-dataset 2-fold CV)"]["scores"]  # MERGE has AV values
    assert rows["amg1608"]["ceiling"]["valence"]["n_songs"] == 10
    table = (out / "cross.md").read_text()
    assert "| ravdess | 20 | quadrant |" in table and "(quadrants from label signs)" in table
    assert "merge (in-dataset 2-fold CV)" in printed.out


def test_cross_several_training_sets_are_joined(releases, tmp_path, capsys):
    out = tmp_path / "cross2"
    code = main(["benchmark", "--train", f"merge={releases['merge']}", "--train", f"amg1608={releases['amg1608']}",
                 "--test", f"ravdess={releases['ravdess']}", "--folds", "0", "--out", str(out),
                 "--cache-dir", str(tmp_path / "cache"), *TINY])
    assert code == 0, capsys.readouterr().err
    doc = json.loads((out / "cross.json").read_text())
    assert doc["n_train"] == 22 and [r["test"] for r in doc["rows"]] == ["ravdess"]
    split = json.loads((out / "train" / "split.json").read_text())
    assert sorted(split["folds"][0]["train"])[:2] == ["amg1608:100", "amg1608:107"]


def test_cross_refuses_shared_songs_and_bad_specs(releases, tmp_path, capsys):
    common = ["--out", str(tmp_path / "x"), "--cache-dir", str(tmp_path / "cache"), *TINY]
    assert main(["benchmark", "--train", f"merge={releases['merge']}", "--test", f"merge={releases['merge']}",
                 *common]) == 1
    assert "shares 12 song(s) with the training set merge" in capsys.readouterr().err
    assert main(["benchmark", "--train", "pmemo", "--test", f"merge={releases['merge']}", *common]) == 1
    assert "no folder for pmemo" in capsys.readouterr().err
    assert main(["benchmark", "--train", f"merge={releases['merge']}", *common]) == 1
    assert "needs --train and --test" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
