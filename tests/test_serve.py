"""``mer serve``'s API with the framework's test client: a prediction equal to ``mer predict``,
bad and hostile files, limits, the token, library audio, concurrent uploads, the page's plot helpers
and progress. The page in a real browser: test_serve_browser.py; Host/Origin and the library's
API: test_serve_security.py; request limits and the real server: test_serve_limits.py."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mer import synth

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from mer.serve.app import create_app  # noqa: E402
from mer.infer import Predictor  # noqa: E402
from serve_common import FakeLibrary, _client, _wait, _wav_bytes


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    """The default model, loaded once for the module."""
    return Predictor("default")


def test_health_models_and_a_prediction_equal_to_mer_predict(predictor, tmp_path):
    with _client(create_app(predictor)) as client:
        assert client.get("/api/health").json()["status"] == "ok"
        m = client.get("/api/models").json()
        assert m["current"]["model"] == "default" and m["current"]["quadrant_probabilities"] is True
        data = _wav_bytes(6.0, seed=3)
        res = client.post("/api/predict", files=[("files", ("clip.wav", data, "audio/wav"))])
        assert res.status_code == 200, res.text
        job = _wait(client, res.json()["jobs"][0]["id"])
        assert job["state"] == "done" and job["progress"] == 1.0
        (tmp_path / "clip.wav").write_bytes(data)
        ref = predictor(tmp_path / "clip.wav")
        r = job["result"]
        assert (r["valence"], r["arousal"], r["quadrant"]) == (ref.valence, ref.arousal, ref.quadrant)
        assert r["path"] == "clip.wav" and len(r["valence_curve"]) == len(ref.times)
        assert "/openapi.json" in client.get("/docs").text or client.get("/openapi.json").status_code == 200


def test_real_clip(predictor, shared):
    clip = shared("pmemo-samples", "108.mp3")
    with _client(create_app(predictor)) as client:
        res = client.post("/api/predict", files=[("files", ("108.mp3", clip.read_bytes(), "audio/mpeg"))])
        job = _wait(client, res.json()["jobs"][0]["id"])
        ref = predictor(clip)
        assert job["result"]["valence"] == ref.valence and job["result"]["p_q1"] == ref.probabilities["Q1"]


def test_bad_files_get_a_per_file_error_judged_by_decoding(predictor, bad_corpus):
    with _client(create_app(predictor)) as client:
        files = [("files", (p.name, p.read_bytes(), "audio/mpeg")) for p in bad_corpus.values() if p.is_file()]
        files.append(("files", ("real-but-named.txt", _wav_bytes(), "text/plain")))  # a WAV named .txt: fine
        res = client.post("/api/predict", files=files)
        assert res.status_code == 200
        jobs = [_wait(client, j["id"]) for j in res.json()["jobs"]]
        by_name = {j["name"]: j for j in jobs}
        assert by_name["real-but-named.txt"]["state"] == "done"
        for p in (p for p in bad_corpus.values() if p.is_file()):
            j = by_name[p.name]
            if j["state"] == "error":
                assert p.name in j["error"] and "/" not in j["error"].split(":")[0]
        assert sum(j["state"] == "error" for j in jobs) >= 3
        assert client.get("/api/health").json()["status"] == "ok"


def test_hostile_names_never_become_paths(predictor, tmp_path):
    app = create_app(predictor)
    folder = app.state.queue.folder
    names = ["../../etc/passwd", "/etc/shadow.mp3", "..\\..\\win.ini", "a" * 1000 + ".wav", "ünïcødé 🎵.wav",
             "null\x00byte.wav", "", ".hidden"]
    with _client(app) as client:
        res = client.post("/api/predict", files=[("files", (n, _wav_bytes(1.0, seed=i), "audio/wav"))
                                                 for i, n in enumerate(names)])
        assert res.status_code == 200, res.text
        jobs = [_wait(client, j["id"]) for j in res.json()["jobs"]]
        for j in jobs:
            assert "/" not in j["name"] and "\\" not in j["name"] and "\x00" not in j["name"] and len(j["name"]) <= 200
        assert all(j["state"] == "done" for j in jobs), [j["error"] for j in jobs]
        assert list(folder.iterdir()) == []  # every upload deleted after its job
    assert not folder.exists()  # and the private folder on shutdown
    assert not Path("/etc/passwd.mer").exists()


def test_limits_give_413_and_429_and_nothing_else_is_disturbed(predictor):
    with _client(create_app(predictor, max_upload_mb=0.05, max_files=2, max_jobs=2)) as client:
        big = client.post("/api/predict", files=[("files", ("big.wav", _wav_bytes(5.0), "audio/wav"))])
        assert big.status_code == 413 and "larger than" in big.json()["error"]
        many = client.post("/api/predict", files=[("files", (f"{i}.wav", b"x", "audio/wav")) for i in range(3)])
        assert many.status_code == 413 and "at most 2" in many.json()["error"]
        assert not list(client.app.state.queue.folder.glob("*"))  # nothing of the refused uploads was kept
        ok = client.post("/api/predict", files=[("files", ("a.wav", _wav_bytes(1.0), "audio/wav"))])
        assert ok.status_code == 200
        none = client.post("/api/predict", data={"x": "1"})
        assert none.status_code == 400 and "no files" in none.json()["error"]
    with _client(create_app(predictor, max_jobs=1)) as client:
        busy = client.post("/api/predict", files=[("files", (f"{i}.wav", _wav_bytes(1.0), "audio/wav")) for i in range(2)])
        assert busy.status_code == 429 and "try again" in busy.json()["error"]
        assert client.get("/api/health").status_code == 200


def test_token_guards_the_page_and_the_api(predictor):
    with _client(create_app(predictor, token="s3cret")) as client:
        assert client.get("/api/health").status_code == 401
        assert client.get("/").status_code == 401
        assert client.get("/api/health", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert client.get("/?token=s3cret").status_code == 200
        assert client.get("/api/health?token=wrong").status_code == 401
        assert client.get("/static/app.js").status_code == 200  # the page's code holds no data


def test_library_audio_by_id_only_with_range_requests(predictor, tmp_path):
    song = tmp_path / "song.wav"
    song.write_bytes(_wav_bytes(4.0))
    with _client(create_app(predictor)) as client:
        assert client.get("/api/library/songs").status_code == 404
    with _client(create_app(predictor, library=FakeLibrary(song))) as client:
        assert client.get("/api/library/songs").json()["songs"][0]["id"] == 1
        full = client.get("/api/library/audio/1")
        assert full.status_code == 200 and full.content == song.read_bytes()
        part = client.get("/api/library/audio/1", headers={"Range": "bytes=100-199"})
        assert part.status_code == 206 and part.content == song.read_bytes()[100:200]
        assert client.get("/api/library/audio/2").status_code == 404
        assert client.get("/api/library/audio/..%2F..%2Fetc%2Fpasswd").status_code in (404, 422)


@pytest.mark.slow
def test_twenty_concurrent_uploads_finish_correctly_and_health_stays_fast(predictor, shared):
    clips = sorted(shared("4q-dev").glob("Q2/*.mp3"))[:20]
    with _client(create_app(predictor, workers=2)) as client:
        ids, lock = {}, threading.Lock()

        def send(p: Path) -> None:
            r = client.post("/api/predict", files=[("files", (p.name, p.read_bytes(), "audio/mpeg"))])
            with lock:
                ids[p] = r.json()["jobs"][0]["id"]

        threads = [threading.Thread(target=send, args=(p,)) for p in clips]
        for t in threads:
            t.start()
        health = []
        while any(t.is_alive() for t in threads) or client.get("/api/health").json()["jobs_active"]:
            t0 = time.perf_counter()
            assert client.get("/api/health").status_code == 200
            health.append(time.perf_counter() - t0)
            time.sleep(0.2)
        for t in threads:
            t.join()
        for p, job_id in ids.items():
            j = _wait(client, job_id)
            ref = predictor(p)
            assert (j["result"]["valence"], j["result"]["arousal"]) == (ref.valence, ref.arousal), p.name
        assert max(health) < 1.0, max(health)
        print(f"\n20 concurrent uploads: health max {max(health) * 1000:.0f} ms over {len(health)} checks")


# ------------------------------------------------------------------ the page in a real browser


def test_moving_mean_is_centred_and_keeps_the_ends():
    from mer.plot import moving_mean

    assert np.allclose(moving_mean([0, 0, 3, 0, 0], 3), [0, 1, 1, 1, 0])  # the ends repeat the first/last value
    assert np.allclose(moving_mean(np.full(50, 0.4)), 0.4)  # a flat curve stays flat
    impulse = np.zeros(61)
    impulse[30] = 21.0
    out = moving_mean(impulse)  # 21 steps by default: 10 either side
    assert len(out) == 61 and np.allclose(out[20:41], 1.0) and not out[:20].any() and not out[41:].any()
    assert moving_mean([]).size == 0 and np.allclose(moving_mean([0.7]), [0.7])


def test_plot_draws_the_smoothed_curve_beside_the_whole_clip(tmp_path):
    pytest.importorskip("matplotlib")
    from types import SimpleNamespace

    import matplotlib.pyplot as plt

    from mer.plot import CURVE_NOTE, figure, moving_mean, plot_prediction

    rng = np.random.default_rng(0)
    n = 80  # noise about 0.3, and an arousal that sits clipped at 1.0 for 10 s
    curve = np.clip(np.stack([0.3 + 0.4 * rng.standard_normal(n),
                              np.r_[np.full(20, 1.0), 0.5 * rng.standard_normal(n - 20)]], axis=1), -1, 1)
    pred = SimpleNamespace(path="song.mp3", curve=curve, times=0.5 * np.arange(n), valence=0.3, arousal=0.4,
                           quadrant="Q1", quadrant_words="happy/excited", duration=40.0, confidence=0.7, segments=[])
    fig = figure(pred)
    over = fig.axes[1]
    assert np.allclose(over.lines[0].get_ydata(), moving_mean(curve[:, 0]))
    assert np.allclose(over.lines[1].get_ydata(), moving_mean(curve[:, 1]))
    assert sorted(line.get_ydata()[0] for line in over.lines if line.get_linestyle() == "--") == [0.3, 0.4]
    lo, hi = over.get_ylim()
    assert -1.1 < lo <= -1 and 1 <= hi < 1.1  # the scale, not the data, sets the axis
    assert CURVE_NOTE in [t.get_text() for t in fig.texts] and "docs/benchmarks.md" in CURVE_NOTE
    plt.close(fig)
    assert plot_prediction(pred, tmp_path / "plot.png").stat().st_size > 10_000


@pytest.mark.slow
def test_long_file_reports_progress(predictor, tmp_path):
    long = tmp_path / "ten-minutes.wav"
    sf.write(long, np.tile(synth.clip(0.3, 0.3, 10.0, 16000, seed=2), 60), 16000)
    with _client(create_app(predictor)) as client:
        res = client.post("/api/predict", files=[("files", ("ten-minutes.wav", long.read_bytes(), "audio/wav"))])
        job_id, seen = res.json()["jobs"][0]["id"], set()
        while True:
            j = client.get(f"/api/jobs/{job_id}").json()
            seen.add(j["progress"])
            if j["state"] in ("done", "error"):
                break
            time.sleep(0.02)
        assert j["state"] == "done" and abs(j["result"]["duration"] - 600) < 0.1
        assert any(0 < p < 0.9 for p in seen), sorted(seen)
