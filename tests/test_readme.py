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


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_every_readme_python_block_is_valid_python():
    blocks = _python_blocks()
    assert len(blocks) >= 5
    for block in blocks:
        compile(block.replace("{...}", "{}"), "README.md", "exec")  # placeholders aside, each parses


def test_readme_datasets_example_runs_on_the_real_data(tmp_path, monkeypatch):
    import pytest

    data = Path(__file__).resolve().parents[2] / "shared" / "data"
    if not (data / "4q-dev").is_dir():
        pytest.skip(f"{data / '4q-dev'} not found (the real data sits beside the repository)")
    block = next(b for b in _python_blocks() if "load_dataset" in b)
    monkeypatch.chdir(tmp_path)
    exec(compile(block.replace("../shared/data", str(data)), "README.md", "exec"), {})
    assert (tmp_path / "split.json").stat().st_size > 0
