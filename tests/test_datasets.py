"""Dataset loaders on the real files in ../shared/data and on generated official-layout trees."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from mer import DatasetError
from mer.datasets import DEAM, compare_datasets, load_dataset
from mer.datasets.deam import AVERAGED, DYNAMIC_DIR, RATER_DIR, STATIC_FILES


# -- real data ---------------------------------------------------------------------------

def test_emomusic_real_annotations_and_clips(shared):
    ds = load_dataset("emomusic", shared("emomusic-mini"))
    assert len(ds) == 744
    for t in ds.index.values():
        assert t.static is not None and -1 <= t.valence <= 1 and -1 <= t.arousal <= 1
        assert t.dynamic.shape == (61, 2)
        assert t.times[0] == 15.0 and t.times[-1] == 45.0 and np.allclose(np.diff(t.times), 0.5)
    song2 = ds.track(2)
    assert (song2.arousal, song2.valence) == (pytest.approx((3.1 - 5) / 4), pytest.approx((3 - 5) / 4))
    assert song2.artist == "The New Mystikal Troubadours" and song2.metadata["mediaeval2013_set"] == "development"
    with_audio = list(ds.tracks())
    assert sorted(int(t.track_id) for t in with_audio) == [2, 3, 4, 5, 7, 8, 10, 12, 13, 17]
    from mer import audio
    for t in with_audio:  # every label time lies inside the clip
        assert audio.info(t.audio_path).duration >= t.times[-1]
    rep = ds.validate()
    assert rep.counts() == {"missing_audio": 734} and rep.n_audio == 10


def _deam_tree(root: Path, static_files: dict[str, str]) -> Path:
    song_level = root.joinpath(*AVERAGED, "song_level")
    song_level.mkdir(parents=True)
    for name, text in static_files.items():
        (song_level / name).write_text(text)
    (root / "MEMD_audio").mkdir()
    return root


def test_deam_excerpts_parse_to_reference_values(tmp_path, shared):
    labels = shared("deam-labels")
    tree = _deam_tree(tmp_path / "deam", {
        STATIC_FILES[0]: (labels / "static_annotations_averaged_songs_1_2000.excerpt.csv").read_text(),
        STATIC_FILES[1]: (labels / "static_annotations_averaged_songs_2000_2058.excerpt.csv").read_text()})
    ds = DEAM(tree)
    with open(labels / "deam_song_level_labels.csv") as fh:
        reference = {r["song_id"]: r for r in csv.DictReader(fh)}
    assert len(ds) == 20
    for t in ds.index.values():
        ref = reference[t.track_id]
        assert t.valence == pytest.approx((float(ref["valence_mean"]) - 5) / 4, abs=1e-9)
        assert t.arousal == pytest.approx((float(ref["arousal_mean"]) - 5) / 4, abs=1e-9)
    assert ds.track(2001).metadata["full_song"] and ds.track(2001).valence_std == pytest.approx(0.98 / 4)
    assert not ds.track(4).metadata["full_song"]


def test_swap_between_deam_and_emomusic_is_detected(tmp_path, shared):
    rows = (shared("deam-labels") / "deam_song_level_labels.csv").read_text()
    deam = DEAM(_deam_tree(tmp_path / "deam", {STATIC_FILES[0]: rows}))
    emo = load_dataset("emomusic", shared("emomusic-mini"))
    rep = compare_datasets(deam, emo)
    assert rep.shared == 744 and rep.swapped / rep.shared > 0.95 and "SWAPPED" in rep.verdict
    assert compare_datasets(emo, emo).verdict.startswith("consistent")


def test_4q_real_clips_quadrants_and_mood_labels(shared):
    root = shared("4q-dev")
    ds = load_dataset("4q", root, lexicon=shared("lexicons", "Ratings_Warriner_et_al.csv"))
    tracks = list(ds.tracks())
    assert len(tracks) == 600 and all(t.audio_path.parent.name == t.quadrant for t in tracks)
    by_q = defaultdict(list)
    for t in tracks:
        assert t.artist
        if t.static is not None:
            by_q[t.quadrant].append(t.static)
    signs = {"Q1": (1, 1), "Q2": (-1, 1), "Q3": (-1, -1), "Q4": (1, -1)}
    for q, (sv, sa) in signs.items():
        v, a = np.mean(by_q[q], axis=0)
        assert np.sign(v) == sv and np.sign(a) == sa, (q, v, a)
    assert sum(map(len, by_q.values())) >= 580
    plain = load_dataset("4q", root)
    assert plain.track(tracks[0].track_id).valence is None


def test_4q_reports_unknown_mood_words(tmp_path):
    (tmp_path / "Q1").mkdir()
    (tmp_path / "Q1" / "a.mp3").write_bytes(b"x")
    (tmp_path / "panda_dataset_taffc_annotations.csv").write_text("Song,Quadrant\na,Q1\nb,Q5\n")
    (tmp_path / "panda_dataset_taffc_metadata.csv").write_text(
        '"Song","Artist","Title","MoodsFoundStr"\n"a","X","T","happy; zorblik"\n', encoding="latin-1")
    (tmp_path / "lex.csv").write_text(",Word,V.Mean.Sum,A.Mean.Sum\n1,happy,8.0,6.0\n")
    ds = load_dataset("4q", tmp_path, lexicon=tmp_path / "lex.csv")
    t = ds.track("a")
    assert (t.valence, t.arousal) == (pytest.approx(0.75), pytest.approx(0.25))
    kinds = ds.validate().counts()
    assert kinds == {"unknown_word": 1, "malformed_row": 1}


def test_pmemo2019_layout_from_real_samples(tmp_path, shared):
    src = shared("pmemo-samples")
    (tmp_path / "chorus").mkdir()
    (tmp_path / "annotations").mkdir()
    static = ["musicId,Arousal(mean),Valence(mean)"]
    dynamic = ["musicId,frameTime,Arousal(mean),Valence(mean)"]
    meta = ["musicId,fileName,title,artist"]
    for j in sorted(src.glob("*.json")):
        if j.stem == "index":
            continue
        d = json.loads(j.read_text())
        shutil.copy(src / f"{j.stem}.mp3", tmp_path / "chorus" / f"{j.stem}.mp3")
        static.append(f"{d['id']},{d['arousal_mean']},{d['valence_mean']}")
        dynamic += [f"{d['id']},{t},{a},{v}" for t, v, a in zip(d["dynamic"]["t"], d["dynamic"]["v"], d["dynamic"]["a"])]
        meta.append(f"{d['id']},{d['id']}.mp3,\"{d['title']}\",\"{d['artist']}\"")
    (tmp_path / "annotations" / "static_annotations.csv").write_text("\n".join(static) + "\n")
    (tmp_path / "annotations" / "dynamic_annotations.csv").write_text("\n".join(dynamic) + "\n")
    (tmp_path / "metadata.csv").write_text("\n".join(meta) + "\n")
    ds = load_dataset("pmemo", tmp_path)
    assert sorted(ds.track_ids) == ["108", "372", "634", "683"] and ds.validate().ok
    t = ds.track(108)
    assert t.valence == pytest.approx(2 * 0.863 - 1) and t.artist == "Calvin Harris"
    assert t.times[0] == 15.5 and np.allclose(np.diff(t.times), 0.5) and t.dynamic.shape[1] == 2
    assert ds.track(372).valence < 0 < ds.track(372).arousal  # the Q2 sample


def _wide(ids_lengths: dict[int, int], n_cols: int, value: float) -> str:
    header = "song_id," + ",".join(f"sample_{15000 + 500 * i}ms" for i in range(n_cols))
    lines = [header]
    for sid, n in ids_lengths.items():
        cells = [f"{value + 0.001 * i:.3f}" for i in range(n)] + [""] * (n_cols - n)
        lines.append(f"{sid}," + ",".join(cells))
    return "\n".join(lines) + "\n"


def test_synthetic_deam_tree_reports_exactly_the_planted_problems(tmp_path):
    static_1 = "song_id, valence_mean, valence_std, arousal_mean, arousal_std\n" \
               "      2,         3.1 ,        0.94,         3   ,        0.63\n" \
               "      3,         7.0 ,        1.0 ,         6.0 ,        1.0\n" \
               "      4,         abc ,        1.0 ,         6.0 ,        1.0\n"
    static_2 = ("song_id, valence_mean, valence_std, valence_ max_mean, valence_max_std, valence_min_mean, "
                "valence_min_std, arousal_mean, arousal_std, arousal_max_mean, arousal_max_std, arousal_min_mean, "
                "arousal_min_std\n   2001,         3.2 ,        0.98,              5.0 ,            1.41,             "
                "2.2 ,            0.98,         6.6 ,        0.8 ,             8.6 ,            0.49,             3.4 ,"
                "            1.02\n")
    root = _deam_tree(tmp_path / "deam", {STATIC_FILES[0]: static_1, STATIC_FILES[1]: static_2})
    dyn = root.joinpath(*AVERAGED, DYNAMIC_DIR)
    dyn.mkdir()
    lengths = {2: 61, 3: 61, 2001: 400}  # the full song's row is longer; the others end in empty cells
    (dyn / "valence.csv").write_text(_wide(lengths, 400, 0.1))
    (dyn / "arousal.csv").write_text(_wide(lengths, 400, -0.2))
    for sid in (2, 2001, 9):  # 3 is missing, 9 has no labels
        (root / "MEMD_audio" / f"{sid}.mp3").write_bytes(b"x")
    ds = DEAM(root)
    assert sorted(ds.track_ids, key=int) == ["2", "3", "2001"]
    full = ds.track(2001)
    assert full.dynamic.shape == (400, 2) and full.times[-1] == pytest.approx(15.0 + 0.5 * 399)
    assert ds.track(2).dynamic.shape == (61, 2) and ds.track(2).times[-1] == 45.0
    assert ds.track(2).dynamic[0].tolist() == [pytest.approx(0.1), pytest.approx(-0.2)]
    rep = ds.validate()
    found = sorted((p.kind, p.track_id or Path(p.path).name) for p in rep.problems)
    assert found == [("malformed_row", "4"), ("missing_audio", "3"), ("unlabelled_audio", "9.mp3")]


def test_deam_rater_curves_give_a_ceiling(tmp_path):
    from mer.reliability import dynamic_ceiling
    root = _deam_tree(tmp_path / "deam", {STATIC_FILES[0]: "song_id, valence_mean, arousal_mean\n2, 5, 5\n"})
    rng = np.random.default_rng(0)
    truth = np.sin(np.linspace(0, 6, 60))
    for dim in ("valence", "arousal"):
        d = root.joinpath(*RATER_DIR, dim)
        d.mkdir(parents=True)
        header = "WorkerID," + ",".join(f"sample_{15000 + 500 * i}ms" for i in range(60))
        rows = [f"w{r}," + ",".join(f"{x:.4f}" for x in truth + rng.normal(0, 0.5, 60)) for r in range(10)]
        (d / "2.csv").write_text("\n".join([header] + rows) + "\n")
    curves = DEAM(root).rater_curves("2")
    assert curves["valence"].shape == (10, 60)
    c = dynamic_ceiling([curves["valence"]], "valence")
    # signal variance 0.5, noise 0.25 -> single-rater r about 0.67, 10 raters -> reliability about 0.95
    assert 0.5 < c.single_rater_r < 0.8 and 0.9 < c.reliability < 0.99 and c.max_r == pytest.approx(np.sqrt(c.reliability), abs=0.01)
    whole = DEAM(root).annotation_ceiling()
    assert whole["valence"].n_songs == 1 and whole["arousal"].raters == 10


def test_folder_dataset(tmp_path, wav_file):
    shutil.copy(wav_file, tmp_path / "a.wav")
    (tmp_path / "labels.csv").write_text("path,valence,arousal,artist\na.wav,7,3,Me\nb.wav,x,3,Me\nmissing.wav,5,5,\n")
    (tmp_path / "dyn.csv").write_text("path,time,valence,arousal\na.wav,15.5,5,5\na.wav,15.0,9,1\n")
    ds = load_dataset("folder", tmp_path, scale="1-9", dynamic="dyn.csv")
    t = ds.track("a.wav")
    assert (t.valence, t.arousal, t.artist) == (0.5, -0.5, "Me")
    assert t.times.tolist() == [15.0, 15.5] and t.dynamic.tolist() == [[1.0, -1.0], [0.0, 0.0]]
    assert sorted(ds.validate().counts().items()) == [("malformed_row", 1), ("missing_audio", 1)]
    assert [x.track_id for x in ds.tracks()] == ["a.wav"]


def test_missing_or_malformed_inputs_say_what_to_do(tmp_path):
    with pytest.raises(DatasetError, match="download"):
        load_dataset("deam", tmp_path / "nope")
    with pytest.raises(DatasetError, match="annotations averaged per song"):
        load_dataset("deam", tmp_path).track_ids
    with pytest.raises(DatasetError, match="unknown dataset"):
        load_dataset("deem", tmp_path)
    (tmp_path / "labels.csv").write_text("file,v,a\nx.wav,1,2\n")
    with pytest.raises(DatasetError, match="no column 'path'"):
        load_dataset("folder", tmp_path).track_ids


def test_cli_validate_real_data(shared):
    for name, folder, expect in (("4q", "4q-dev", "Q1 150"), ("emomusic", "emomusic-mini", "734 missing_audio")):
        res = subprocess.run([sys.executable, "-m", "mer", "datasets", "validate", name, "--root",
                              str(shared(folder))], capture_output=True, text=True, timeout=120)
        assert res.returncode == 0 and expect in res.stdout, res.stdout + res.stderr


def test_mediaeval2015_split_on_synthetic_deam(tmp_path):
    from mer.datasets.splits import mediaeval2015
    root = _deam_tree(tmp_path / "deam", {STATIC_FILES[0]: "song_id, valence_mean, arousal_mean\n2, 5, 5\n3, 5, 5\n7, 5, 5\n"})
    dyn = root.joinpath(*AVERAGED, DYNAMIC_DIR)
    dyn.mkdir()
    for dim in ("valence", "arousal"):
        (dyn / f"{dim}.csv").write_text(_wide({2: 61, 3: 61, 2001: 300, 2058: 200}, 300, 0.0))
    train, test = mediaeval2015(DEAM(root)).folds[0]
    assert train == ["2", "3"] and test == ["2001", "2058"]  # 7 has no dynamic labels
