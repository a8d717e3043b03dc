"""The one output schema (mer.infer.schema) is what the writers use: predict's CSV header,
the library's songs table (its DDL must hold every library field), the Ray shards' types."""

from __future__ import annotations

import sqlite3

import pytest

from mer.infer import schema


def test_fields_are_unique_and_typed():
    names = [f.name for f in schema.FIELDS]
    assert len(names) == len(set(names))
    assert {f.kind for f in schema.FIELDS} <= {"text", "real", "int", "blob"}
    assert all(f.description for f in schema.FIELDS)


def test_predict_csv_header_is_the_schemas(tmp_path, wav_file):
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-m", "mer", "predict", "-q", "--format", "csv", str(wav_file)],
                         capture_output=True, text=True, timeout=300)
    assert res.stdout.splitlines()[0].split(",") == list(schema.FILE_COLUMNS)


def test_the_library_table_holds_every_library_field(tmp_path):
    from mer.library.store import connect

    db = tmp_path / "m.sqlite"
    connect(db, create=True).close()
    with sqlite3.connect(db) as conn:
        cols = {r[1]: r[2] for r in conn.execute("PRAGMA table_info(songs)")}
    sql = {"text": "TEXT", "real": "REAL", "int": "INTEGER", "blob": "BLOB"}
    assert {c: sql[schema.KINDS[c]] for c in schema.LIBRARY_COLUMNS} == {c: cols[c] for c in schema.LIBRARY_COLUMNS}
    assert set(cols) - set(schema.LIBRARY_COLUMNS) == {"id"}


def test_shards_take_their_types_from_the_schema():
    pytest.importorskip("pyarrow")
    from mer.library.cluster import shard_schema

    s = shard_schema()
    assert [f.name for f in s] == [*schema.LIBRARY_COLUMNS, "error"]
    assert str(s.field("valence").type) == "double" and str(s.field("curve").type) == "binary"


def test_a_curve_carries_its_own_time_axis(wav_file):
    import numpy as np

    import mer
    from mer.grid import step_times

    whole = mer.predict(wav_file)
    assert whole.curve_start == 0.5 and whole.curve_step == 0.5
    assert np.allclose(whole.times, step_times(len(whole.curve)))
    part = mer.predict(wav_file, offset=2.0)
    assert part.curve_start == 2.5 and part.times[0] == 2.5 and len(part.times) == len(part.curve)
    d = part.to_dict()
    assert d["curve_start"] == 2.5 and d["curve_step"] == 0.5 and d["times"][:2] == [2.5, 3.0]


def test_the_python_api_writes_the_clis_csv_and_rows_are_exactly_the_schemas(tmp_path, wav_file):
    """One row builder (mer.infer.rows): mer.predict + write_csv gives the very bytes of
    `mer predict --format csv` (with --segments and --mood-columns too); a builder that leaves a
    column out raises instead of writing an empty cell."""
    import subprocess
    import sys

    import mer
    from mer.bundle import Bundle
    from mer.infer import rows

    pred = mer.predict(wav_file, segments=1)
    words = Bundle.resolve("default").mood_words
    for extra, segments, moods in (([], False, ()), (["--segments", "1"], True, ()),
                                   (["--mood-columns"], False, words)):
        out = tmp_path / "api.csv"
        rows.write_csv([pred], out, segments=segments, moods=moods)
        cli = subprocess.run([sys.executable, "-m", "mer", "predict", "-q", "--format", "csv", str(wav_file), *extra],
                             capture_output=True, text=True, timeout=300)
        assert cli.returncode == 0, cli.stderr
        assert out.read_text() == cli.stdout, extra
    row = rows.file_row(pred)
    assert list(row) == list(schema.FILE_COLUMNS) and row["p_q1"] is not None
    library = rows.library_row(pred, "/m/a.wav", 1, 2, "x")
    assert list(library) == list(schema.LIBRARY_COLUMNS) and library["moods"]
    with pytest.raises(rows.SchemaError, match="lacks weights_sha1"):
        rows._exactly({c: 1 for c in schema.FILE_COLUMNS if c != "weights_sha1"}, schema.FILE_COLUMNS, "file")
