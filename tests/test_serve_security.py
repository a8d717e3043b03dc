"""``mer serve`` answers only its own Host names and same-origin writes: DNS rebinding, cross-site
uploads, per-browser jobs, the docs behind the token, security headers; the library's songs and audio by id."""

from __future__ import annotations

import argparse

import pytest


pytest.importorskip("fastapi")
pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

from mer.serve.app import create_app  # noqa: E402
from mer.infer import Predictor  # noqa: E402
from serve_common import FakeLibrary, REPO, _client, _library_rows, _real_library, _song_row, _wait, _wav_bytes


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    """The default model, loaded once for the module."""
    return Predictor("default")


def test_only_this_servers_host_names_are_answered():
    from mer.serve.app import allowed_hosts, host_name

    assert [host_name(h) for h in ("LocalHost:08000", "[::1]:8000", "127.0.0.1", "example.com.", "[::1", "a:b")] == \
        ["localhost", "::1", "127.0.0.1", "example.com", None, None]
    assert allowed_hosts("0.0.0.0") is None and "box" in allowed_hosts("0.0.0.0", ["Box"])
    assert "192.168.1.5" in allowed_hosts("192.168.1.5") and allowed_hosts("::") is None
    assert allowed_hosts("::1") == {"127.0.0.1", "localhost", "::1"}


def test_dns_rebinding_gets_421_and_nothing_of_the_library(predictor, tmp_path):
    song = tmp_path / "song.wav"
    song.write_bytes(_wav_bytes(2.0))
    app = create_app(predictor, library=FakeLibrary(song))
    with TestClient(app, base_url="http://evil.example:8000") as evil:
        for path in ("/api/library/songs", "/api/library/audio/1", "/api/jobs", "/", "/static/app.js"):
            r = evil.get(path)
            assert r.status_code == 421 and str(song) not in r.text, path
        assert "--allow-host" in evil.get("/api/jobs").json()["error"]
        assert evil.post("/api/predict", files=[("files", ("a.wav", b"x"))]).status_code == 421
    for base in ("http://localhost:8000", "http://LOCALHOST", "http://[::1]:8000", "http://127.0.0.1:9"):
        assert TestClient(app, base_url=base).get("/api/library/songs").status_code == 200, base
    anywhere = create_app(predictor, host="0.0.0.0")  # meant to be reached by other names
    assert TestClient(anywhere, base_url="http://my-box:8000").get("/api/health").status_code == 200
    named = create_app(predictor, host="0.0.0.0", allow_hosts=["my-box"])
    assert TestClient(named, base_url="http://my-box:8000").get("/api/health").status_code == 200
    behind_a_proxy = TestClient(named, base_url="http://127.0.0.1:8000")  # the proxy rewrote Host; Origin is the name
    assert behind_a_proxy.post("/api/predict", files=[("files", ("a.wav", _wav_bytes(1.0)))],
                               headers={"Origin": "https://my-box"}).status_code == 200
    assert TestClient(named, base_url="http://evil.example:8000").get("/api/health").status_code == 421
    for a in (app, anywhere, named):
        a.state.queue.close()


def test_cross_site_uploads_are_refused_and_queue_nothing(predictor):
    files = [("files", ("a.wav", _wav_bytes(1.0), "audio/wav"))]
    app = create_app(predictor)
    with _client(app) as client:
        for headers in ({"Origin": "http://evil.example"}, {"Origin": "null"}, {"Origin": "http://127.0.0.1:9999"},
                        {"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"}):
            r = client.post("/api/predict", files=files, headers=headers)
            assert r.status_code == 403 and "cross-site" in r.json()["error"], headers
        assert not app.state.queue.jobs and list(app.state.queue.folder.iterdir()) == []
        assert client.get("/api/jobs", headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
        page = {"Origin": "http://127.0.0.1:8000", "Sec-Fetch-Site": "same-origin"}  # what the page's fetch sends
        assert client.post("/api/predict", files=files, headers=page).status_code == 200
        assert client.post("/api/predict", files=files).status_code == 200  # no Origin: curl, scripts
        assert client.get("/", headers={"Sec-Fetch-Site": "cross-site"}).status_code == 200  # a link to the page
    anywhere = create_app(predictor, host="0.0.0.0")  # any Host is answered, but the Origin check holds
    with TestClient(anywhere, base_url="http://my-box:8000") as client:
        assert client.post("/api/predict", files=files, headers={"Origin": "http://evil.example"}).status_code == 403
        assert client.post("/api/predict", files=files, headers={"Origin": "http://my-box:8000"}).status_code == 200
    js = (REPO / "mer" / "serve" / "static" / "app.js").read_text()
    assert "fetch(path" in js and "http" not in js.split("async function api", 1)[1].split("}", 1)[0]


def test_each_browser_sees_its_own_jobs_and_the_token_holder_all(predictor):
    app = create_app(predictor)
    with _client(app) as alice:
        first = alice.get("/")
        cookie = first.headers["set-cookie"].lower()
        assert "mer_client=" in cookie and "httponly" in cookie and "samesite=strict" in cookie
        job_id = alice.post("/api/predict", files=[("files", ("alice.wav", _wav_bytes(1.0)))]).json()["jobs"][0]["id"]
        assert [j["id"] for j in alice.get("/api/jobs").json()["jobs"]] == [job_id]
        bob = _client(app)
        assert bob.get("/api/jobs").json()["jobs"] == []  # another browser: nothing of Alice's
        assert bob.get("/api/jobs?all=1").status_code == 403  # no token: nobody sees all
        _wait(alice, job_id)
    with _client(create_app(predictor, token="t0k")) as admin:
        h = {"Authorization": "Bearer t0k"}
        admin.post("/api/predict", files=[("files", ("x.wav", _wav_bytes(1.0)))], headers=h)
        admin.cookies.clear()
        assert admin.get("/api/jobs", headers=h).json()["jobs"] == []
        assert len(admin.get("/api/jobs?all=1", headers=h).json()["jobs"]) == 1


def test_docs_need_the_token_and_the_token_can_stay_out_of_ps(predictor, tmp_path, monkeypatch):
    with _client(create_app(predictor, token="s3cret")) as client:
        for path in ("/docs", "/openapi.json"):
            assert client.get(path).status_code == 401, path
        docs = client.get("/docs?token=s3cret")
        assert docs.status_code == 200 and "/openapi.json?token=s3cret" in docs.text
        assert client.get("/openapi.json?token=s3cret").json()["info"]["title"] == "mer"
    from mer.cli.serve import _token
    from mer.errors import ConfigError

    (tmp_path / "token").write_text("from-file\n")
    assert _token(argparse.Namespace(token=None, token_file=str(tmp_path / "token"))) == "from-file"
    monkeypatch.setenv("MER_TOKEN", "from-env")
    assert _token(argparse.Namespace(token=None, token_file=None)) == "from-env"
    (tmp_path / "empty").write_text("\n")
    for bad in ("empty", "missing"):
        with pytest.raises(ConfigError, match="--token-file"):
            _token(argparse.Namespace(token=None, token_file=str(tmp_path / bad)))


def test_security_headers_and_a_policy_the_page_passes(predictor):
    import re

    with _client(create_app(predictor)) as client:
        for path in ("/", "/api/health", "/static/app.js", "/api/jobs/nope"):
            h = client.get(path).headers
            assert h["x-content-type-options"] == "nosniff" and h["x-frame-options"] == "DENY", path
            assert "frame-ancestors 'none'" in h["content-security-policy"], path
        csp = client.get("/").headers["content-security-policy"]
    assert "script-src 'self';" in csp and "'unsafe-eval'" not in csp
    html = (REPO / "mer" / "serve" / "static" / "index.html").read_text()
    scripts = re.findall(r"<script([^>]*)>", html)
    assert scripts and all('src="/static/' in s for s in scripts)  # no inline script: 'self' is enough
    assert not re.search(r"\son[a-z]+=", html)  # no inline event handlers either
    links = re.findall(r'(?:src|href)="([^"#]+)"', html)
    assert all(u.startswith(("/", "data:image/svg+xml,")) for u in links)  # nothing from elsewhere
    assert re.search(r'<link rel="icon" href="data:image/svg\+xml,', html)  # a favicon, inline: no 404 for /favicon.ico


def test_library_songs_are_named_by_their_tags(predictor, tmp_path):
    """Each song of /api/library/songs has the name the page lists it by: "Artist - Title", the
    title alone, else the file name without its suffix (what `mer playlist` writes)."""
    lib = _library_rows(tmp_path / "music.sqlite", [
        _song_row("/music/a/01 intro.mp3", artist="Nina Simone", title="Feeling Good"),
        _song_row("/music/a/02 untitled.flac", title="Sinnerman"),
        _song_row("/music/b/03 take five.ogg", artist="Dave Brubeck")])
    with _client(create_app(predictor, library=lib)) as client:
        songs = client.get("/api/library/songs").json()["songs"]
    assert [(s["name"], s["path"]) for s in songs] == [
        ("Nina Simone - Feeling Good", "/music/a/01 intro.mp3"), ("Sinnerman", "/music/a/02 untitled.flac"),
        ("03 take five", "/music/b/03 take five.ogg")]


def test_audio_id_out_of_range_is_404_not_500(predictor, tmp_path):
    song = tmp_path / "song.wav"
    song.write_bytes(_wav_bytes(2.0))
    lib = _real_library(tmp_path / "music.sqlite", song)
    with _client(create_app(predictor, library=lib)) as client:
        sid = client.get("/api/library/songs").json()["songs"][0]["id"]
        assert client.get(f"/api/library/audio/{sid}").content == song.read_bytes()
        for bad in ("99999999999999999999", "9223372036854775808", "-1", "1e3", "abc"):
            r = client.get(f"/api/library/audio/{bad}")
            assert r.status_code == 404 and "no song" in r.json()["error"], bad
