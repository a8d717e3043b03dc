"""The cross-dataset protocol (#29): ``mer benchmark --train A --test B`` on fake releases."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mer.cli import main
from mer.datasets import load_dataset
from test_datasets_more import amg1608_release, merge_release, ravdess_release

REPO = Path(__file__).resolve().parents[1]
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


# ------------------------------------------------------------------ layouts checked before training (#37)
def _run_layout(data: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    """``python -m benchmarks.pmemo_layout --data DATA --out OUT``, from the repository root."""
    return subprocess.run([sys.executable, "-m", "benchmarks.pmemo_layout", "--data", str(data), "--out", str(out),
                           *extra], capture_output=True, text=True, timeout=120, cwd=REPO)


def _pmemo_samples(data: Path) -> Path:
    """``data/pmemo-samples`` as the real one is shaped: ``<id>.mp3`` + ``<id>.json``, and index.json."""
    src = data / "pmemo-samples"
    src.mkdir(parents=True)
    for sid, v, a in ((7, 0.8, 0.3), (12, 0.2, 0.9)):
        (src / f"{sid}.mp3").write_bytes(b"ID3 not really audio")
        (src / f"{sid}.json").write_text(json.dumps({
            "id": sid, "title": f"Song, {sid}", "artist": f"Artist {sid}", "valence_mean": v, "arousal_mean": a,
            "dynamic": {"t": [15.5, 16.0, 16.5], "v": [v, v, v - 0.1], "a": [a, a + 0.05, a]}}))
    (src / "index.json").write_text(json.dumps([{"id": 7}, {"id": 12}]))
    return data


def test_pmemo_layout_builds_the_release_layout_the_loader_reads(tmp_path):
    data = _pmemo_samples(tmp_path / "data")
    out = tmp_path / "pmemo"
    res = _run_layout(data, out)
    assert res.returncode == 0, res.stderr
    ds = load_dataset("pmemo", out)
    assert ds.track_ids == ["7", "12"] and ds.validate().ok
    t = ds.track(12)
    assert t.valence == pytest.approx(2 * 0.2 - 1) and t.arousal == pytest.approx(2 * 0.9 - 1)
    assert list(t.times) == [15.5, 16.0, 16.5] and t.dynamic[1, 1] == pytest.approx(2 * 0.95 - 1)
    assert t.artist == "Artist 12" and (out / "chorus" / "12.mp3").is_symlink()
    assert _run_layout(data, out, "--copy").returncode == 0  # again, over its own output: copies now
    assert not (out / "chorus" / "12.mp3").is_symlink() and load_dataset("pmemo", out).validate().ok
    inside = _run_layout(data, REPO / "runs" / "pmemo-layout")
    assert inside.returncode == 1 and "inside the repository" in inside.stderr
    assert not (REPO / "runs" / "pmemo-layout").exists()


def test_pmemo_layout_of_the_real_samples(tmp_path, shared):
    data = shared("pmemo-samples").parent
    res = _run_layout(data, tmp_path / "pmemo")
    assert res.returncode == 0, res.stderr
    ds = load_dataset("pmemo", tmp_path / "pmemo")
    assert ds.track_ids == ["108", "372", "634", "683"] and ds.validate().ok
    assert ds.track(372).valence < 0 < ds.track(372).arousal and len(ds.track(108).times) > 50


def test_a_wrong_test_or_train_folder_fails_before_anything_trains(releases, tmp_path, capsys):
    """A --test (or --train) folder that is not the dataset's layout fails at once with the loader's
    own line (what to download, what the folder must hold); it used to fail after training."""
    common = ["--folds", "2", "--out", str(tmp_path / "x"), "--cache-dir", str(tmp_path / "cache"), *TINY]
    wrong = releases["ravdess"]
    for argv in (["--train", f"merge={releases['merge']}", "--test", f"pmemo={wrong}"],
                 ["--train", f"pmemo={wrong}", "--test", f"merge={releases['merge']}"]):
        assert main(["benchmark", *argv, *common]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"mer: error: {wrong / 'annotations' / 'static_annotations.csv'}")
        assert ("pmemo expects chorus/ and annotations/static_annotations.csv (download: "
                "https://github.com/HuiZhangDB/PMEmo") in err[0]
        assert not (tmp_path / "x").exists() and not (tmp_path / "cache").exists()
    # the annotations without the clips: said, with where to get them
    layout = tmp_path / "pmemo"
    assert _run_layout(_pmemo_samples(tmp_path / "data"), layout).returncode == 0
    for clip in (layout / "chorus").iterdir():
        clip.unlink()
    assert main(["benchmark", "--train", f"merge={releases['merge']}", "--test", f"pmemo={layout}", *common]) == 1
    err = capsys.readouterr().err
    assert "none of the 2 labelled pmemo clips has its audio file here" in err and "mer datasets validate" in err
    assert not (tmp_path / "x").exists()


def test_train_checks_the_layout_before_its_run_folder_exists(releases, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--dataset", "pmemo", "--root", str(releases["ravdess"]), "--model", "crnn",
                 "--out", str(out), "--quiet"]) == 1
    assert "pmemo expects chorus/" in capsys.readouterr().err
    assert not out.exists()  # not even its lock file
