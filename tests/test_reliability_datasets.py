"""Nothing silently wrong in the dataset loaders (#18): labels off their scale, duplicate ids,
byte-order marks, short rows and non-regular files, each planted in generated files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mer import DatasetError
from mer.datasets import DEAM, load_dataset, load_lexicon
from mer.datasets.deam import AVERAGED, DYNAMIC_DIR, STATIC_FILES
from mer.datasets.problems import guess_scale

STATIC_HEADER = "song_id, valence_mean, valence_std, arousal_mean, arousal_std\n"


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding=encoding)
    return path


def folder(root: Path, labels: str, audio: tuple[str, ...] = ("a.wav", "b.wav", "c.wav"), **options):
    write(root / "labels.csv", labels)
    for name in audio:
        (root / name).write_bytes(b"x")
    return load_dataset("folder", root, **options)


def deam(root: Path, static: str | None = None, static_2: str | None = None, valence: str | None = None,
         arousal: str | None = None, **options) -> DEAM:
    song_level = root.joinpath(*AVERAGED, "song_level")
    song_level.mkdir(parents=True)
    (root / "MEMD_audio").mkdir()
    for name, text in ((STATIC_FILES[0], static), (STATIC_FILES[1], static_2)):
        if text is not None:
            write(song_level / name, text)
    for dim, text in (("valence", valence), ("arousal", arousal)):
        if text is not None:
            write(root.joinpath(*AVERAGED, DYNAMIC_DIR, f"{dim}.csv"), text)
    return DEAM(root, **options)


def wide(rows: dict[str, list[float]], n_cols: int = 4) -> str:
    header = "song_id," + ",".join(f"sample_{15000 + 500 * i}ms" for i in range(n_cols))
    return "\n".join([header] + [f"{sid}," + ",".join(f"{x:g}" for x in xs) for sid, xs in rows.items()]) + "\n"


def found(ds) -> list[tuple]:
    """(kind, track id, line, blocking) of every problem ``validate()`` reports, missing audio left out."""
    return [(p.kind, p.track_id, p.line, p.blocking) for p in ds.validate().problems if p.kind != "missing_audio"]


def messages(ds, kind: str) -> list[str]:
    return [p.message for p in ds.validate().problems if p.kind == kind]


def cli_validate(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mer", "datasets", "validate", *args, "--show", "50"],
                          capture_output=True, text=True, timeout=120)


# -- 1. labels off their scale ---------------------------------------------------------------

def test_folder_value_off_the_declared_scale_is_refused_and_reported(tmp_path):
    ds = folder(tmp_path, "path,valence,arousal\na.wav,42,5\nb.wav,5,5\nc.wav,7,3\n", scale="1-9")
    assert ds.track_ids == ["b.wav", "c.wav"]
    assert found(ds) == [("out_of_range", "a.wav", 2, True)]
    assert messages(ds, "out_of_range") == [
        "labels.csv line 2: valence 42 outside the 1-9 scale [1, 9]; track left out: correct the value, "
        "or pass --dataset-option clip=true to clip it to the scale"]
    assert [p.kind for p in ds.blocking_problems()] == ["out_of_range"]
    with pytest.raises(DatasetError, match="'a.wav' was left out: labels.csv line 2: valence 42"):
        ds.track("a.wav")


def test_folder_values_on_another_scale_name_the_scale_to_pass(tmp_path):
    ds = folder(tmp_path, "path,valence,arousal\na.wav,6.5,7\nb.wav,5,5\nc.wav,3,0.5\n")  # 1-9 values, default scale
    assert ds.track_ids == [] and [k for k, *_ in found(ds)] == ["out_of_range"] * 3
    assert messages(ds, "out_of_range")[0] == (
        "labels.csv line 2: valence 6.5, arousal 7 outside the canonical scale [-1, 1]; track left out: "
        "values look like the 1-9 scale; pass --dataset-option scale=1-9")
    assert messages(ds, "out_of_range")[2].startswith("labels.csv line 4: valence 3 outside")  # 0.5 is in range


def test_clip_option_clips_and_counts(tmp_path):
    ds = folder(tmp_path, "path,valence,arousal\na.wav,42,5\nb.wav,5,0\nc.wav,7,3\n", scale="1-9", clip="true")
    assert ds.clip is True and ds.track_ids == ["a.wav", "b.wav", "c.wav"]
    assert (ds.track("a.wav").valence, ds.track("b.wav").arousal) == (1.0, -1.0)
    assert found(ds) == [("clipped", None, None, False)] and ds.blocking_problems() == []
    assert messages(ds, "clipped") == ["labels.csv: clipped 2 value(s) outside the 1-9 scale [1, 9] to its edges "
                                       "(clip=true)"]
    with pytest.raises(DatasetError, match="clip='maybe': write clip=true or clip=false"):
        load_dataset("folder", tmp_path, clip="maybe")


def test_values_within_the_tolerance_are_put_on_the_edge(tmp_path):
    ds = folder(tmp_path, "path,valence,arousal\na.wav,9.0000001,0.9999995\nb.wav,9.01,5\n", scale="1-9")
    assert ds.track("a.wav").valence == 1.0 and ds.track("a.wav").arousal == -1.0
    assert found(ds) == [("out_of_range", "b.wav", 3, True)]


def test_folder_dynamic_off_the_scale_refuses_the_track_by_its_id(tmp_path):
    write(tmp_path / "dyn.csv", "path,time,valence,arousal\na.wav,15.0,5,5\nb.wav,15.0,5,-7\nb.wav,15.5,5,5\n")
    ds = folder(tmp_path, "path,valence,arousal,id\na.wav,5,5,A\nb.wav,5,5,B\n", scale="1-9", dynamic="dyn.csv")
    assert ds.track_ids == ["A"] and ds.track("A").dynamic.tolist() == [[0.0, 0.0]]
    assert found(ds) == [("out_of_range", "B", 3, True)]
    assert messages(ds, "out_of_range")[0].startswith("dyn.csv line 3: arousal -7 outside the 1-9 scale [1, 9]")


def test_deam_static_and_dynamic_off_the_scale(tmp_path):
    ds = deam(tmp_path / "deam", static=STATIC_HEADER + "2, 42, 1, 5, 1\n3, 5, 1, 5, 1\n4, 5, 1, 5, 1\n",
              valence=wide({"3": [0.1, 7, 0.2, -7], "4": [0.1, 0.2, 0.3, 0.4]}),
              arousal=wide({"3": [0.1, 0.1, 0.1, 0.1], "4": [0.1, 0.2, 0.3, 0.4]}))
    assert ds.track_ids == ["4"]
    assert found(ds) == [("out_of_range", "2", 2, True), ("out_of_range", "3", 2, True),
                         ("missing_labels", "3", None, False)]  # 3's arousal curve has no valence curve left
    assert messages(ds, "out_of_range") == [
        f"{STATIC_FILES[0]} line 2: valence 42 outside the 1-9 scale [1, 9]; track left out: correct the value, "
        "or pass --dataset-option clip=true to clip it to the scale",
        "valence.csv line 2: 2 values (first 7 at 15.5 s) outside the canonical scale [-1, 1]; track left out: "
        "correct the value, or pass --dataset-option clip=true to clip it to the scale"]
    clipped = DEAM(tmp_path / "deam", clip=True)
    assert clipped.track(3).dynamic[:, 0].tolist() == [0.1, 1.0, 0.2, -1.0] and clipped.track(2).valence == 1.0
    assert found(clipped) == [("clipped", None, None, False), ("clipped", None, None, False)]


def test_fixed_scale_release_on_another_scale_asks_for_the_right_file(tmp_path):
    root = tmp_path / "emo"
    write(root / "annotations" / "static_annotations.csv",
          "song_id,mean_arousal,std_arousal,mean_valence,std_valence\n2,0.4,0.1,0.6,0.1\n3,0.7,0.1,0.2,0.1\n")
    ds = load_dataset("emomusic", root)
    assert ds.track_ids == [] and messages(ds, "out_of_range")[0] == (
        "static_annotations.csv line 2: valence 0.6, arousal 0.4 outside the 1-9 scale [1, 9]; track left out: "
        "values look like the 0-1 scale, not 1-9; is this the right file (or release)?")


def test_impossible_rater_spread_is_dropped_and_reported_but_the_track_kept(tmp_path):
    """A standard deviation of ratings on 1-9 lies in [0, 4]: -1 and 7 are reported (not
    blocking), dropped, and the track keeps its means; a plausible spread is converted."""
    root = tmp_path / "emo"
    write(root / "annotations" / "static_annotations.csv",
          "song_id,mean_arousal,std_arousal,mean_valence,std_valence\n2,5,7,6,-1\n3,5,2,5,1\n")
    ds = load_dataset("emomusic", root)
    assert ds.track_ids == ["2", "3"]
    two, three = ds.track("2"), ds.track("3")
    assert (two.valence, two.arousal, two.valence_std, two.arousal_std) == (0.25, 0.0, None, None)
    assert (three.valence_std, three.arousal_std) == (0.25, 0.5)
    spread = [f for f in found(ds) if f[0] == "out_of_range"]
    assert spread == [("out_of_range", "2", 2, False), ("out_of_range", "2", 2, False)]
    assert messages(ds, "out_of_range")[0] == (
        "static_annotations.csv line 2: valence_std -1 is no spread of ratings on the 1-9 scale (0 to 4); "
        "it is ignored, the track kept: correct the value")
    assert not ds.blocking_problems()


def test_pmemo_static_and_dynamic_off_the_scale(tmp_path):
    write(tmp_path / "annotations" / "static_annotations.csv",
          "musicId,Arousal(mean),Valence(mean)\n1,0.5,0.5\n2,0.5,1.5\n3,0.2,0.3\n")
    write(tmp_path / "annotations" / "dynamic_annotations.csv",
          "musicId,frameTime,Arousal(mean),Valence(mean)\n1,15.5,0.5,0.5\n3,15.5,-0.5,0.5\n")
    ds = load_dataset("pmemo", tmp_path)
    assert ds.track_ids == ["1"]
    assert found(ds) == [("out_of_range", "2", 3, True), ("out_of_range", "3", 3, True)]


def test_lexicon_values_off_the_scale(tmp_path):
    lex = write(tmp_path / "lex.csv", ",Word,V.Mean.Sum,A.Mean.Sum\n1,happy,8.0,6.0\n2,sad,-3,2\n")
    problems = []
    assert load_lexicon(lex, problems) == {"happy": (8.0, 6.0)}
    assert [(p.kind, p.track_id, p.line, p.blocking) for p in problems] == [("out_of_range", None, 3, True)]
    assert problems[0].message.startswith("lex.csv line 3: valence -3 outside the 1-9 scale [1, 9]; row left out")
    with pytest.raises(DatasetError, match="lex.csv line 3: valence -3"):
        load_lexicon(lex)


def test_guess_scale():
    assert guess_scale(np.array([0.1, 0.9, 0.5]), "1-9") == "0-1"  # fits 0-1 and canonical: the narrower
    assert guess_scale(np.array([3.0, 5.0, 7.0, 42.0]), "canonical") == "1-9"  # one stray value
    assert guess_scale(np.array([0.0, 50.0, 100.0]), "1-9") is None  # percentages: no known scale
    assert guess_scale(np.array([-0.5, 0.5]), "0-1") == "canonical"


# -- 2. duplicate ids ------------------------------------------------------------------------

def fourq(root: Path, annotations: str, metadata: str | None = None):
    write(root / "panda_dataset_taffc_annotations.csv", annotations)
    if metadata is not None:
        write(root / "panda_dataset_taffc_metadata.csv", metadata, encoding="latin-1")
    return load_dataset("4q", root)


def test_4q_duplicate_songs(tmp_path):
    ds = fourq(tmp_path, "Song,Quadrant\na,Q1\nb,Q2\na,Q1\nb,Q3\nc,Q4\n",
               '"Song","Artist","Title","MoodsFoundStr"\n"a","X","T","happy"\n"c","Y","U","calm"\n'
               '"c","Z","U","calm"\n')
    assert ds.track_ids == ["a"] and ds.track("a").quadrant == "Q1"
    assert found(ds) == [("duplicate", "a", 4, False), ("duplicate", "b", 5, True), ("duplicate", "c", 4, True)]
    assert messages(ds, "duplicate")[:2] == [
        "panda_dataset_taffc_annotations.csv lines 2 and 4: 'a' listed twice with the same values; kept one",
        "panda_dataset_taffc_annotations.csv lines 3 and 5: 'b' listed twice with different values ('Q2' vs 'Q3'); "
        "left out: delete the wrong row"]
    assert [p.track_id for p in ds.blocking_problems()] == ["b", "c"]


def test_deam_duplicates_within_and_across_static_files(tmp_path):
    ds = deam(tmp_path / "deam", static=STATIC_HEADER + "2, 3, 1, 4, 1\n3, 5, 1, 5, 1\n2, 3.0, 1.0, 4, 1\n",
              static_2=STATIC_HEADER + "3, 6, 1, 5, 1\n2001, 5, 1, 5, 1\n")
    assert ds.track_ids == ["2", "2001"]
    assert found(ds) == [("duplicate", "2", 4, False), ("duplicate", "3", 2, True)]
    assert messages(ds, "duplicate")[1].startswith(
        f"{STATIC_FILES[0]} line 3 and {STATIC_FILES[1]} line 2: '3' listed twice with different values "
        "(valence 5, arousal 5, valence_std 1, arousal_std 1 vs valence 6, ")


def test_dynamic_duplicates_wide_and_long(tmp_path):
    ds = deam(tmp_path / "deam", valence=wide({"2": [0.1, 0.2], "3": [0.1], "2 ": [0.1, 0.2], "3  ": [0.2]}),
              arousal=wide({"2": [0.1, 0.2], "3": [0.1]}))
    assert ds.track_ids == ["2"]
    assert found(ds) == [("duplicate", "2", 4, False), ("duplicate", "3", 5, True),
                         ("missing_labels", "3", None, False)]
    write(tmp_path / "pm" / "annotations" / "static_annotations.csv", "musicId,Arousal(mean),Valence(mean)\n")
    write(tmp_path / "pm" / "annotations" / "dynamic_annotations.csv", "musicId,frameTime,Arousal(mean),Valence(mean)\n"
          "1,15.5,0.5,0.5\n1,16.0,0.5,0.5\n1,15.5,0.5,0.5\n2,15.5,0.5,0.5\n2,15.5,0.6,0.5\n")
    pm = load_dataset("pmemo", tmp_path / "pm")
    assert pm.track_ids == ["1"] and pm.track(1).times.tolist() == [15.5, 16.0]
    assert found(pm) == [("duplicate", "1", 4, False), ("duplicate", "2", 6, True)]
    assert messages(pm, "duplicate")[1].startswith("dynamic_annotations.csv lines 5 and 6: '2' at 15.5 s listed twice")


def test_folder_and_metadata_duplicates(tmp_path):
    ds = folder(tmp_path / "f", "path,valence,arousal\na.wav,0.5,0.5\na.wav,0.5,0.5\nb.wav,0.5,0.5\nb.wav,0.1,0.5\n")
    assert ds.track_ids == ["a.wav"]
    assert found(ds) == [("duplicate", "a.wav", 3, False), ("duplicate", "b.wav", 5, True)]
    pm = tmp_path / "pm"
    write(pm / "annotations" / "static_annotations.csv", "musicId,Arousal(mean),Valence(mean)\n1,0.5,0.5\n2,0.5,0.5\n")
    write(pm / "metadata.csv", "musicId,artist\n1,X\n2,Y\n2,Z\n")
    ds = load_dataset("pmemo", pm)
    assert ds.track_ids == ["1"] and found(ds) == [("duplicate", "2", 4, True)]


# -- 3. byte-order marks ---------------------------------------------------------------------

def test_utf8_bom_is_accepted_everywhere(tmp_path):
    ds = folder(tmp_path / "f", "\ufeffpath,valence,arousal\na.wav,7,3\n", scale="1-9")
    assert ds.track("a.wav").valence == 0.5 and found(ds) == []
    meta = tmp_path / "q" / "panda_dataset_taffc_metadata.csv"  # read as latin-1, unless a BOM says UTF-8
    write(meta, "")
    meta.write_bytes('\ufeff"Song","Artist","Title","MoodsFoundStr"\n"a","Sigur Rós","T","happy"\n'.encode())
    q = fourq(tmp_path / "q", "\ufeffSong,Quadrant\na,Q1\n")
    assert q.track("a").artist == "Sigur Rós" and found(q) == []
    d = deam(tmp_path / "deam", static="\ufeff" + STATIC_HEADER + "2, 3, 1, 4, 1\n",
             valence="\ufeff" + wide({"2": [0.1]}), arousal=wide({"2": [0.2]}))
    assert d.track(2).dynamic.tolist() == [[0.1, 0.2]] and found(d) == []
    lex = write(tmp_path / "lex.csv", "\ufeffWord,V.Mean.Sum,A.Mean.Sum\nhappy,8.0,6.0\n")
    assert load_lexicon(lex) == {"happy": (8.0, 6.0)}


def test_utf16_file_says_how_to_save_it(tmp_path):
    write(tmp_path / "labels.csv", "path,valence,arousal\na.wav,0,0\n", encoding="utf-16")
    with pytest.raises(DatasetError, match=r"labels.csv: UTF-16 text; save it as CSV \(comma-separated, UTF-8\)"):
        load_dataset("folder", tmp_path).validate()


# -- 4. short and ragged rows ----------------------------------------------------------------

def test_short_and_long_rows_in_a_folder_csv(tmp_path):
    ds = folder(tmp_path, "path,valence,arousal,artist\na.wav\nb.wav,0.5,0.5,Earth, Wind & Fire\nc.wav,0.5,0.5,X,,\n")
    assert ds.track_ids == ["c.wav"]  # c's empty cells at the end of the row are fine
    assert found(ds) == [("malformed_row", None, 2, False), ("malformed_row", None, 3, False)]
    assert messages(ds, "malformed_row")[0] == ("labels.csv line 2: 1 cells for 4 columns (path, valence, arousal, "
                                                "artist); row skipped: fix it (a missing or unquoted comma?)")
    res = cli_validate("folder", "--root", str(tmp_path))
    assert res.returncode == 0 and "2 malformed_row" in res.stdout and "labels.csv line 2: 1 cells" in res.stdout, \
        res.stdout + res.stderr


@pytest.mark.parametrize("layout", ["deam", "emomusic", "pmemo", "4q", "lexicon", "folder_dynamic", "songs_info"])
def test_short_rows_in_every_loader_are_reported_not_fatal(tmp_path, layout):
    short = "x\n"  # a row with one cell, wherever it goes
    if layout == "deam":
        ds = deam(tmp_path / "d", static=STATIC_HEADER + "2, 5, 1, 5, 1\n" + short, valence=wide({"2": [0.1]}) + short,
                  arousal=wide({"2": [0.1]}))
        expected = [("malformed_row", None, 3, False), ("malformed_row", None, 3, False)]
    elif layout in ("emomusic", "songs_info"):
        ann = tmp_path / "annotations"
        write(ann / "static_annotations.csv", "song_id,mean_arousal,std_arousal,mean_valence,std_valence\n2,5,1,5,1\n"
              + (short if layout == "emomusic" else ""))
        if layout == "songs_info":
            write(ann / "songs_info.csv", '"song_id","Artist","Song title","Genre","Mediaeval 2013 set"\n2\n',
                  encoding="latin-1")
        ds = load_dataset("emomusic", tmp_path)
        expected = [("malformed_row", None, 3, False), ("missing_file", None, None, False)] if layout == "emomusic" \
            else [("malformed_row", None, 2, False)]
    elif layout == "pmemo":
        ann = tmp_path / "annotations"
        write(ann / "static_annotations.csv", "musicId,Arousal(mean),Valence(mean)\n1,0.5,0.5\n1\n")
        write(ann / "dynamic_annotations.csv", "musicId,frameTime,Arousal(mean),Valence(mean)\n1,15.5\n")
        ds = load_dataset("pmemo", tmp_path)
        expected = [("malformed_row", None, 3, False), ("malformed_row", None, 2, False)]
    elif layout == "4q":
        ds = fourq(tmp_path, "Song,Quadrant\na,Q1\nb\n", '"Song","Artist","Title","MoodsFoundStr"\n"a","X"\n')
        expected = [("malformed_row", None, 3, False), ("malformed_row", None, 2, False)]
    elif layout == "lexicon":
        write(tmp_path / "lex.csv", ",Word,V.Mean.Sum,A.Mean.Sum\n1,happy\n")
        write(tmp_path / "panda_dataset_taffc_metadata.csv",
              '"Song","Artist","Title","MoodsFoundStr"\n"a","X","T","happy"\n')
        write(tmp_path / "panda_dataset_taffc_annotations.csv", "Song,Quadrant\na,Q1\n")
        ds = load_dataset("4q", tmp_path, lexicon=tmp_path / "lex.csv")
        expected = [("malformed_row", None, 2, False), ("unknown_word", "a", None, False),
                    ("no_mood_label", "a", None, False)]
    else:
        write(tmp_path / "dyn.csv", "path,time,valence,arousal\na.wav\n")
        ds = folder(tmp_path, "path,valence,arousal\na.wav,0,0\n", dynamic="dyn.csv")
        expected = [("malformed_row", None, 2, False)]
    assert found(ds) == expected


# -- 5. pipes, sockets and folders where files should be --------------------------------------

@pytest.fixture
def no_hang():  # noqa: ANN201
    """Fail instead of hanging when something opens a FIFO for reading."""
    def stuck(*_: object) -> None:
        raise TimeoutError("blocked opening a FIFO")
    old = signal.signal(signal.SIGALRM, stuck)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes on this platform")


@needs_fifo
def test_audio_that_is_not_a_regular_file_counts_as_missing(tmp_path, no_hang):
    ds = folder(tmp_path, "path,valence,arousal\na.wav,0,0\nb.wav,0,0\nc.wav,0,0\n", audio=("a.wav",))
    os.mkfifo(tmp_path / "b.wav")
    (tmp_path / "c.wav").mkdir()
    assert [t.track_id for t in ds.tracks()] == ["a.wav"]
    rep = ds.validate()
    assert rep.n_audio == 1 and rep.counts() == {"missing_audio": 2}
    assert [p.message for p in rep.problems] == [
        f"{tmp_path / name} is not a regular file (a folder, pipe or device); put the audio file there"
        for name in ("b.wav", "c.wav")]


@needs_fifo
@pytest.mark.parametrize("make", [os.mkfifo, os.mkdir], ids=["fifo", "folder"])
def test_annotation_that_is_not_a_regular_file_is_an_error(tmp_path, no_hang, make):
    make(tmp_path / "labels.csv")
    with pytest.raises(DatasetError, match=r"labels.csv: not a regular file \(a folder, pipe or device\?\); put the "):
        load_dataset("folder", tmp_path).validate()
    res = cli_validate("folder", "--root", str(tmp_path))
    assert res.returncode != 0 and "labels.csv: not a regular file" in res.stderr and "internal error" not in res.stderr
    ds = deam(tmp_path / "deam", static=STATIC_HEADER + "2, 5, 1, 5, 1\n")
    dyn = tmp_path.joinpath("deam", *AVERAGED, DYNAMIC_DIR)
    dyn.mkdir()
    make(dyn / "valence.csv")
    with pytest.raises(DatasetError, match="valence.csv: not a regular file"):
        ds.validate()


@needs_fifo
def test_lexicon_fifo_is_an_error(tmp_path, no_hang):
    os.mkfifo(tmp_path / "lex.csv")
    with pytest.raises(DatasetError, match="lex.csv: not a regular file"):
        load_lexicon(tmp_path / "lex.csv")


# -- 6. validate() reports everything; the CLI shows it --------------------------------------

def test_everything_wrong_at_once_is_reported_by_the_cli(tmp_path):
    write(tmp_path / "labels.csv", "\ufeffpath,valence,arousal\na.wav,42,5\nb.wav\nc.wav,5,5\nc.wav,6,5\nd.wav,5,5\n")
    for name in "abcd":
        (tmp_path / f"{name}.wav").write_bytes(b"x")
    ds = load_dataset("folder", tmp_path, scale="1-9")
    assert ds.track_ids == ["d.wav"]
    assert sorted(ds.validate().counts().items()) == [("duplicate", 1), ("malformed_row", 1), ("out_of_range", 1)]
    assert [p.kind for p in ds.blocking_problems()] == ["out_of_range", "duplicate"]
    res = cli_validate("folder", "--root", str(tmp_path), "--dataset-option", "scale=1-9")
    assert res.returncode == 0, res.stderr
    assert "problems           : 1 duplicate, 1 malformed_row, 1 out_of_range" in res.stdout
    for text in ("[out_of_range] a.wav: labels.csv line 2: valence 42 outside the 1-9 scale",
                 "[malformed_row] labels.csv line 3: 1 cells for 3 columns",
                 "[duplicate] c.wav: labels.csv lines 4 and 5: 'c.wav' listed twice with different values"):
        assert text in res.stdout, res.stdout
    res = cli_validate("folder", "--root", str(tmp_path), "--dataset-option", "scale=1-9",
                       "--dataset-option", "clip=true")
    assert "tracks with labels : 2" in res.stdout and "clipped 1 value(s)" in res.stdout, res.stdout
