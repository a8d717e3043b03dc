"""AMG1608, RAVDESS (song) and MERGE (#29) on small fake releases with generated audio.

Each fixture writes the release's own file names, column names and quirks (see each
loader's docstring for where they come from): RAVDESS's seven-field file names under
``Actor_NN/`` (a speech file, a video file and a stray wav beside them), MERGE's quadrant folders,
``merge_audio_complete_*.csv`` and ``tvt_dataframes``, AMG1608's ``AMG1608.mat`` with NaN
gaps where a rater did not rate a song. Every release is validated, trained on for 2 folds
with a tiny CRNN and evaluated (out-of-fold) through the CLI.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mer import DatasetError, synth
from mer.cli import main
from mer.datasets import load_dataset
from mer.scales import quadrant_center

SR = 16000
TINY = ["--model", "crnn", "--model-arg", "channels=[8,16,16,16]", "--model-arg", "hidden=16", "--epochs", "1",
        "--batch-size", "8", "--crop-seconds", "2", "--val-fraction", "0.45", "--device", "cpu", "-j", "1", "--quiet"]


def _audio(path: Path, quadrant: str, seed: int, fmt: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    v, a = quadrant_center(quadrant)
    sf.write(path, synth.clip(v, a, seconds=3.0, sr=SR, seed=seed), SR, format=fmt)


# -- fake releases ------------------------------------------------------------------------

EMO = {"01": "Q0", "02": "Q4", "03": "Q1", "04": "Q3", "05": "Q2", "06": "Q2"}


def ravdess_release(root: Path, actors: tuple[int, ...] = (1, 2, 3, 4)) -> Path:
    """Song files 03-02-EE-01-01-01-AA.wav for neutral and the five song emotions, per actor;
    a speech file (disgust), a video file and a stray wav beside them."""
    for i, actor in enumerate(actors):
        for j, (emotion, q) in enumerate(EMO.items()):
            _audio(root / f"Actor_{actor:02d}" / f"03-02-{emotion}-01-01-01-{actor:02d}.wav", q if q != "Q0" else "Q4",
                   10 * i + j)
    _audio(root / "Actor_01" / "03-01-07-02-01-01-01.wav", "Q2", 99)  # speech, disgust: not in the song part
    (root / "Actor_01" / "01-02-03-01-01-01-01.mp4").write_bytes(b"video")  # full-AV: ignored
    _audio(root / "Actor_02" / "readme.wav", "Q1", 98)
    return root


def merge_release(root: Path, n_per_q: int = 3) -> Path:
    """MERGE_Audio_Complete with metadata, AV values, both published splits, and a bimodal
    subset pairing some audio ids with lyrics files."""
    folder = root / "MERGE_Audio_Complete"
    meta = ['Song,Quadrant,AllMusic Id,AllMusic Extraction Date,Artist,Title,Relevance,Year,LowestYear,Duration,'
            'Moods,MoodsAll']
    av = ["Song,Arousal,Valence"]
    songs = []
    for qi, q in enumerate(("Q1", "Q2", "Q3", "Q4")):
        v, a = quadrant_center(q)
        for k in range(n_per_q):
            sid = f"A{qi * n_per_q + k + 1:03d}"
            songs.append((sid, q))
            _audio(folder / q / f"{sid}.mp3", q, qi * 10 + k, "MP3")
            meta.append(f'{sid},{q},MT00{qi}{k},2016-03-01,"Artist {sid}, and Band","Title {k}",0.5,2001,2001,30,'
                        f'"happy; bright","happy; bright; fun"')
            av.append(f"{sid},{(a + 1) / 2 + 0.01 * k:.4f},{(v + 1) / 2:.4f}")
    (folder / "merge_audio_complete_metadata.csv").write_text("\n".join(meta) + "\n", encoding="utf-8")
    (folder / "merge_audio_complete_av_values.csv").write_text("\n".join(av) + "\n")
    for name, shares in (("tvt_70_15_15", (0.7, 0.15)), ("tvt_40_30_30", (0.4, 0.3))):
        n_train = round(shares[0] * len(songs))
        n_val = max(1, round(shares[1] * len(songs)))
        parts = {"train": songs[0::3] + songs[1::3], "validate": songs[2::6], "test": songs[5::6]}
        assert n_train and n_val  # the shares only name the files; the fixture deals every third song
        d = folder / "tvt_dataframes" / name
        d.mkdir(parents=True)
        for part, rows in parts.items():
            (d / f"{name}_{part}_audio_complete.csv").write_text(
                "Song,Quadrant\n" + "".join(f"{s},{q}\n" for s, q in rows))
    bimodal = root / "MERGE_Bimodal_Complete"
    bimodal.mkdir()
    (bimodal / "merge_bimodal_complete_metadata.csv").write_text(
        "Audio_Song,Lyric_Song,Quadrant\nA001,L050,Q1\nA004,L077,Q2\n")
    (root / "MERGE_Lyrics_Complete" / "Q1").mkdir(parents=True)
    (root / "MERGE_Lyrics_Complete" / "Q1" / "L050.txt").write_text("la la la\n")
    return root


def amg1608_release(root: Path, n_songs: int = 10, n_raters: int = 8, seed: int = 0,
                    audio: bool = True) -> tuple[Path, np.ndarray]:
    """AMG1608.mat (song_label: songs x raters x (valence, arousal), NaN gaps), 1608_song_id.mat
    and amg1608_wav/<id>.wav, nested one folder down as the archive does."""
    from scipy.io import savemat

    rng = np.random.default_rng(seed)
    truth = rng.uniform(-0.6, 0.6, size=(n_songs, 2))
    ratings = np.clip(truth[:, None, :] + rng.normal(0, 0.3, size=(n_songs, n_raters, 2)), -1, 1)
    gaps = rng.random((n_songs, n_raters)) < 0.3
    gaps[:, :2] = False  # every song has at least two raters
    ratings[gaps] = np.nan
    release = root / "AMG1608_release"
    release.mkdir(parents=True)
    ids = np.array([[100 + 7 * i] for i in range(n_songs)], dtype=np.float64)  # numeric ids, as MATLAB keeps them
    savemat(release / "AMG1608.mat", {"song_label": ratings})
    savemat(release / "1608_song_id.mat", {"mat_id2song_id": ids})
    if audio:
        for i, (v, a) in enumerate(truth):
            wav = release / "amg1608_wav" / f"{100 + 7 * i}.wav"
            wav.parent.mkdir(exist_ok=True)
            sf.write(wav, synth.clip(v, a, seconds=3.0, sr=SR, seed=i), SR)
    return root, ratings


def train_and_evaluate(name: str, root: Path, tmp_path: Path, capsys, options: tuple[str, ...] = (),
                       extra: tuple[str, ...] = ("--folds", "2")) -> str:
    opts = [x for o in options for x in ("--dataset-option", o)]
    out = tmp_path / f"run_{name}"
    code = main(["train", "--dataset", name, "--root", str(root), *opts, *TINY, *extra, "--out", str(out),
                 "--cache-dir", str(tmp_path / "cache")])
    assert code == 0, capsys.readouterr().err
    assert (out / "summary.json").is_file()
    capsys.readouterr()
    assert main(["evaluate", str(out), "--dataset", name, "--root", str(root), *opts, "--device", "cpu",
                 "-j", "1", "--quiet"]) == 0
    return capsys.readouterr().out


# -- RAVDESS ------------------------------------------------------------------------------

def test_ravdess_song_part_quadrants_actors_and_options(tmp_path):
    root = ravdess_release(tmp_path / "ravdess")
    ds = load_dataset("ravdess", root)
    assert len(ds) == 20 and ds.actors() == ["Actor_01", "Actor_02", "Actor_03", "Actor_04"]
    t = ds.track("03-02-05-01-01-01-03")
    assert (t.quadrant, t.artist, t.metadata["emotion"], t.static) == ("Q2", "Actor_03", "angry", None)
    assert {ds.track(f"03-02-{e}-01-01-01-01").quadrant for e in ("02", "03", "04", "06")} == {"Q4", "Q1", "Q3", "Q2"}
    rep = ds.validate()
    assert [(p.kind, Path(p.path).name) for p in rep.problems] == [("unlabelled_audio", "readme.wav")]
    assert ds.notes() == ["24 song recordings found; the full release has 1,012",
                          "4 neutral recording(s) left out: no quadrant (neutral=centre keeps them at (0, 0))"]
    centred = load_dataset("ravdess", root, neutral="centre", quadrants="fearful=Q3,angry=none")
    n = centred.track("03-02-01-01-01-01-02")
    assert (n.valence, n.arousal, n.quadrant) == (0.0, 0.0, None)
    assert centred.track("03-02-06-01-01-01-01").quadrant == "Q3" and "03-02-05-01-01-01-01" not in centred.index
    speech = load_dataset("ravdess", root, speech=True, quadrants="disgust=Q2")
    assert speech.track("03-01-07-02-01-01-01").metadata["channel"] == "speech" and len(speech) == 21
    with pytest.raises(DatasetError, match="unknown emotion 'joy'"):
        load_dataset("ravdess", root, quadrants="joy=Q1").track_ids
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no .wav files"):
        load_dataset("ravdess", tmp_path / "empty").track_ids


def test_ravdess_folds_are_actor_disjoint_and_train_evaluate(tmp_path, capsys):
    from mer.datasets.splits import dataset_kfold

    root = ravdess_release(tmp_path / "ravdess")
    ds = load_dataset("ravdess", root)
    for train, test in dataset_kfold(ds, 2).folds:
        assert not {ds.track(i).artist for i in train} & {ds.track(i).artist for i in test}
    assert main(["datasets", "validate", "ravdess", "--root", str(root)]) == 0
    assert "note               : 4 neutral recording(s) left out" in capsys.readouterr().out
    assert main(["datasets", "validate", "ravdess", "--root", str(root), "--strict"]) == 1  # the stray readme.wav
    capsys.readouterr()
    out = train_and_evaluate("ravdess", root, tmp_path, capsys)
    assert "quadrants: accuracy" in out and "(20 clips)" in out


# -- MERGE --------------------------------------------------------------------------------

def test_merge_complete_labels_lyrics_and_published_splits(tmp_path):
    root = merge_release(tmp_path / "merge")
    ds = load_dataset("merge", root)
    assert len(ds) == 12 and ds.validate().ok, ds.validate().problems
    t = ds.track("A004")
    assert t.quadrant == "Q2" and t.artist == "Artist A004, and Band" and t.audio_path.parent.name == "Q2"
    assert t.valence == pytest.approx(-0.5, abs=1e-4) and t.arousal == pytest.approx(0.5, abs=1e-4)
    assert ds.track("A001").metadata["lyrics"].endswith("L050.txt") and "lyrics" not in t.metadata  # L077 absent
    split = ds.named_split("tvt_70_15_15")
    (train, test), = split.folds
    assert set(split.info["validate"]) <= set(train) and not set(train) & set(test)
    assert load_dataset("merge", root / "MERGE_Audio_Complete").track_ids == ds.track_ids  # root = the subset folder
    with pytest.raises(DatasetError, match="MERGE_Audio_Balanced/merge_audio_balanced_metadata.csv"):
        load_dataset("merge", root, subset="balanced").track_ids
    with pytest.raises(DatasetError, match="subset=complete or subset=balanced"):
        load_dataset("merge", root, subset="lyrics")


def test_merge_reports_bad_rows_and_off_scale_values(tmp_path):
    root = merge_release(tmp_path / "merge")
    av = root / "MERGE_Audio_Complete" / "merge_audio_complete_av_values.csv"
    lines = [("A002,7.5,0.5" if line.startswith("A002,") else line) for line in av.read_text().splitlines()]
    av.write_text("\n".join(lines + ["A099,0.5,0.5"]) + "\n")
    meta = root / "MERGE_Audio_Complete" / "merge_audio_complete_metadata.csv"
    meta.write_text(meta.read_text() + "A100,Q5,x,x,x,x,x,x,x,x,x,x\n")
    kinds = sorted((p.kind, p.track_id) for p in load_dataset("merge", root).validate().problems)
    assert kinds == [("malformed_row", "A100"), ("missing_labels", "A099"), ("out_of_range", "A002")]


def test_merge_validate_train_on_published_split_and_kfold(tmp_path, capsys):
    root = merge_release(tmp_path / "merge")
    assert main(["datasets", "validate", "merge", "--root", str(root), "--strict"]) == 0
    assert "quadrants          : Q1 3, Q2 3, Q3 3, Q4 3" in capsys.readouterr().out
    out = train_and_evaluate("merge", root, tmp_path, capsys)
    assert "valence" in out and "quadrants: accuracy" in out
    run = tmp_path / "run_split"
    assert main(["train", "--dataset", "merge", "--root", str(root), *TINY, "--split", "tvt_70_15_15", "--out", str(run),
                 "--cache-dir", str(tmp_path / "cache")]) == 0
    import json
    fold = json.loads((run / "fold0" / "test.json").read_text())
    assert (fold["n_val"], fold["n_test"], fold["n_train"]) == (2, 2, 8)  # validate file, test file, the rest


# -- AMG1608 ------------------------------------------------------------------------------

def test_amg1608_mean_and_individual_labels(tmp_path):
    root, ratings = amg1608_release(tmp_path / "amg")
    ds = load_dataset("amg1608", root)
    assert len(ds) == 10 and ds.validate().ok, ds.validate().problems
    t = ds.track(107)
    assert t.valence == pytest.approx(np.nanmean(ratings[1, :, 0])) and t.metadata["raters"] == np.isfinite(
        ratings[1, :, 0]).sum()
    one = ds.ratings("107")
    assert one["valence"].shape == one["rater"].shape and np.allclose(one["arousal"], ratings[1, one["rater"], 1])
    ids, matrix = ds.rating_matrix()
    assert ids[0] == "100" and matrix.shape == (10, 8, 2)


def test_amg1608_split_half_ceiling_matches_the_planted_noise(tmp_path):
    # true spread sd 0.35 (var 0.12), rater noise sd 0.3 (var 0.09), ~14 raters per song:
    # reliability of the mean = 0.12 / (0.12 + 0.09 / 14) ~ 0.95
    root, _ = amg1608_release(tmp_path / "amg", n_songs=300, n_raters=20, audio=False)
    c = load_dataset("amg1608", root).annotation_ceiling()
    assert 0.9 < c["valence"].reliability < 0.99 and c["arousal"].n_songs == 300
    assert 13 < c["valence"].raters < 15 and c["valence"].max_r == pytest.approx(np.sqrt(c["valence"].reliability))
    assert 0.4 < c["valence"].single_rater_r < 0.7


def test_amg1608_off_scale_missing_and_wrong_files(tmp_path):
    from scipy.io import savemat

    root, ratings = amg1608_release(tmp_path / "amg")
    ratings[3, 0, 0] = 4.0
    ratings[5] = np.nan
    savemat(root / "AMG1608_release" / "AMG1608.mat", {"song_label": ratings})
    ds = load_dataset("amg1608", root)
    found = sorted((p.kind, p.track_id) for p in ds.validate().problems)
    assert found == [("missing_labels", "135"), ("out_of_range", "121"), ("unlabelled_audio", None),
                     ("unlabelled_audio", None)]
    assert [p.kind for p in ds.blocking_problems()] == ["out_of_range"]
    savemat(root / "AMG1608_release" / "AMG1608.mat", {"labels": ratings})
    with pytest.raises(DatasetError, match="no variable song_label"):
        load_dataset("amg1608", root).track_ids
    with pytest.raises(DatasetError, match="no AMG1608.mat"):
        load_dataset("amg1608", tmp_path / "amg" / "AMG1608_release" / "amg1608_wav").track_ids


def test_amg1608_validate_train_evaluate_with_ceiling(tmp_path, capsys):
    root, _ = amg1608_release(tmp_path / "amg")
    assert main(["datasets", "validate", "amg1608", "--root", str(root), "--strict"]) == 0
    capsys.readouterr()
    out = train_and_evaluate("amg1608", root, tmp_path, capsys)
    assert "valence" in out and "ceiling" in out.lower()


def test_datasets_list_shows_all_eight(capsys):
    assert main(["datasets", "list"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert names == ["4q", "amg1608", "deam", "emomusic", "folder", "merge", "pmemo", "ravdess"]


def test_a_loader_registers_itself_and_every_command_names_the_choices_from_the_registry(tmp_path, capsys):
    """mirdata's one-file rule: a Dataset subclass that names itself is a dataset; the unknown-name
    messages of load_dataset, mer train and mer benchmark --train/--test all come from one place, and
    `mer train --root WRONG` says where to download the release and what its folder holds."""
    from mer.datasets import base, dataset_class

    class Tiny(base.Dataset):
        name = "tiny-test-release"
        download = "https://example.org/tiny"
        layout = "tiny/*.wav"

        def _load_index(self):  # noqa: ANN202
            return {}

    try:
        assert dataset_class("Tiny-Test-Release") is Tiny
        with pytest.raises(base.DatasetError, match="download tiny-test-release from https://example.org/tiny"):
            Tiny(tmp_path / "nowhere")
    finally:
        base.REGISTRY.pop("tiny-test-release")
    for argv in (["train", "--dataset", "nope", "--root", str(tmp_path), "--out", str(tmp_path / "r")],
                 ["benchmark", "--train", f"nope={tmp_path}", "--test", f"4q={tmp_path}"]):
        assert main(argv) != 0
        err = capsys.readouterr().err.strip().splitlines()
        assert err == ["mer: error: unknown dataset 'nope'; choose one of 4q, amg1608, deam, emomusic, folder, merge, "
                       "pmemo, ravdess"], err
    assert main(["train", "--dataset", "4q", "--root", str(tmp_path / "wrong"), "--out", str(tmp_path / "r")]) != 0
    err = capsys.readouterr().err
    assert f"{tmp_path / 'wrong'}: dataset folder not found; download 4q from" in err and "Q1/..Q4/" in err


def test_datasets_info_names_options_and_published_splits(capsys):
    assert main(["datasets", "info", "merge"]) == 0
    out = capsys.readouterr().out
    assert "options: subset=complete, clip=False" in out and "splits: tvt_70_15_15, tvt_40_30_30" in out
    assert "zenodo.org/records/13939205" in out
    assert main(["datasets", "info", "ravdess"]) == 0
    assert "neutral=drop" in capsys.readouterr().out
