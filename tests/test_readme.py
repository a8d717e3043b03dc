"""README's Python example runs as written (with its song replaced by a real or generated file)."""

from __future__ import annotations

import re
from pathlib import Path

import soundfile as sf

from mer import synth

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_api_example_runs(tmp_path, capsys, monkeypatch):
    text = README.read_text(encoding="utf-8")
    block = re.search(r"<!-- api-example.*?-->\s*```python\n(.*?)```", text, re.S).group(1)
    song = tmp_path / "song.wav"
    sf.write(song, synth.clip(0.5, 0.5, 20.0, 22050, seed=3), 22050)
    monkeypatch.chdir(tmp_path)
    exec(compile(block.replace("song.mp3", "song.wav"), "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "Q" in out and "(200,)" in out and "failed" not in out
