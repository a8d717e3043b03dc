"""The examples of README.md, CHANGELOG.md and the documentation site (docs/) hold up.

- README's Python API example runs as written (its song replaced by a generated file), and the
  datasets example runs on the real data when it is beside the repository;
- every Python block of README, CHANGELOG and docs/*.md compiles;
- every ``mer ...`` command in their shell blocks (```bash, ```console lines after ``$ ``)
  parses with mer's own argument parser, ``python -m benchmarks.NAME`` names a script that
  exists and ``make TARGET`` a target of the Makefile;
- README's relative links point at files that exist (``make docs`` checks the site's own links
  and anchors strictly).
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import textwrap
from pathlib import Path

import pytest
import soundfile as sf

from mer import synth

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCUMENTS = [README, ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").rglob("*.md"))]
SHELL = ("bash", "console", "sh", "shell")
# a fence, possibly indented (inside a list item), with its language; the block ends at the same indent
_FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^(?P=indent)```", re.M | re.S)


def _blocks(langs: tuple[str, ...]) -> list[tuple[str, int, str, str]]:
    """(document, line, language, dedented body) of every fenced block in ``langs``, in every document."""
    found = []
    for doc in DOCUMENTS:
        text = doc.read_text(encoding="utf-8")
        for m in _FENCE.finditer(text):
            if m.group("lang") in langs:
                found.append((str(doc.relative_to(ROOT)), text.count("\n", 0, m.start()) + 1, m.group("lang"),
                              textwrap.dedent(m.group("body"))))
    return found


def _python_blocks() -> list[str]:
    return [body for _, _, _, body in _blocks(("python",))]


def _commands(body: str, console: bool) -> list[str]:
    """The command lines of a shell block: every line of a script (continuations joined), only
    the ``$ `` lines of a console transcript."""
    lines, out = body.splitlines(), []
    if console:
        lines = [ln[2:] for ln in lines if ln.startswith("$ ")]
    pending = ""
    for ln in lines:
        if ln.rstrip().endswith("\\"):
            pending += ln.rstrip()[:-1] + " "
            continue
        out.append(pending + ln)
        pending = ""
    return [c for c in out if c.strip()]


def _segments(command: str) -> list[list[str]]:
    """The simple commands of a pipeline, redirections left out: ``cat x | mer predict - > y``
    -> [["cat", "x"], ["mer", "predict", "-"]]."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars="|&;<>")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    segments: list[list[str]] = [[]]
    tokens = list(lexer)
    skip = False
    for i, tok in enumerate(tokens):
        if skip:
            skip = False
        elif tok in ("|", "||", "&&", ";", "&"):
            segments.append([])
        elif tok in (">", ">>", "<", "2>", ">&") or tok.endswith(">"):
            skip = True  # the file a redirection names
        elif tok == "2" and i + 1 < len(tokens) and tokens[i + 1].startswith(">"):
            continue  # the 2 of 2>
        else:
            segments[-1].append(tok)
    return [s for s in segments if s]


def _mer_argv(tokens: list[str]) -> list[str] | None:
    """The arguments after ``mer`` (``mer ...`` or ``... -m mer ...`` as torchrun launches it)."""
    if tokens[0] == "mer":
        return tokens[1:]
    for i in range(len(tokens) - 1):
        if tokens[i] == "-m" and tokens[i + 1] == "mer":
            return tokens[i + 2:]
    return None


def _shell_commands() -> list[tuple[str, int, list[str]]]:
    found = []
    for doc, line, lang, body in _blocks(SHELL):
        for command in _commands(body, console=lang == "console"):
            for tokens in _segments(command):
                found.append((doc, line, tokens))
    return found


def test_readme_python_api_example_runs(tmp_path, capsys, monkeypatch):
    text = README.read_text(encoding="utf-8")
    block = re.search(r"<!-- api-example.*?-->\s*```python\n(.*?)```", text, re.S).group(1)
    song = tmp_path / "song.wav"
    sf.write(song, synth.clip(0.5, 0.5, 20.0, 22050, seed=3), 22050)
    monkeypatch.chdir(tmp_path)
    exec(compile(block.replace("song.mp3", "song.wav"), "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "Q" in out and "(200,)" in out and "failed" not in out


def test_every_python_block_of_readme_and_docs_compiles():
    blocks = _blocks(("python",))
    assert len(blocks) >= 8, "README and docs/ should carry their Python examples"
    for doc, line, _, body in blocks:
        try:
            compile(body, f"{doc}:{line}", "exec")
        except SyntaxError as exc:
            pytest.fail(f"{doc} line {line}: the Python block does not compile: {exc}")


def test_every_mer_command_of_readme_and_docs_parses():
    from mer.cli import build_parser

    commands = [(doc, line, argv) for doc, line, tokens in _shell_commands()
                if (argv := _mer_argv(tokens)) is not None]
    assert len(commands) >= 60, f"only {len(commands)} mer commands found in README and docs/"
    assert {argv[0] for _, _, argv in commands if argv} >= {"predict", "index", "search", "playlist", "tag",
                                                           "serve", "train", "evaluate", "benchmark", "datasets"}
    for doc, line, argv in commands:
        err = io.StringIO()
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                build_parser(argv).parse_args(argv)
        except SystemExit as exc:
            if exc.code:  # --help and --version exit 0
                pytest.fail(f"{doc} (block at line {line}): `mer {shlex.join(argv)}` does not parse: "
                            f"{err.getvalue().strip().splitlines()[-1]}")


def test_benchmark_scripts_and_make_targets_named_in_the_docs_exist():
    targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(encoding="utf-8"), re.M))
    checked = 0
    for doc, line, tokens in _shell_commands():
        if tokens[0] == "make" and len(tokens) > 1:
            assert tokens[1] in targets, f"{doc} (block at line {line}): no make target {tokens[1]!r}"
            checked += 1
        for i, tok in enumerate(tokens[:-1]):
            if tok == "-m" and tokens[i + 1].startswith("benchmarks."):
                name = tokens[i + 1].split(".", 1)[1]
                if name.isupper():  # benchmarks.NAME: a placeholder
                    continue
                assert (ROOT / "benchmarks" / f"{name}.py").is_file(), f"{doc} (block at line {line}): no {tok} {tokens[i + 1]}"
                checked += 1
    assert checked >= 10


def test_readme_links_point_at_files_that_exist():
    text = README.read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [link for link in links if "://" not in link]
    assert len(local) >= 15
    for link in local:
        assert (ROOT / link).exists(), f"README links to {link}, which does not exist"


def test_readme_is_a_guide_of_at_most_300_lines():
    assert len(README.read_text(encoding="utf-8").splitlines()) <= 300


def test_readme_datasets_example_runs_on_the_real_data(tmp_path, monkeypatch):
    data = ROOT.parent / "shared" / "data"
    if not (data / "4q-dev").is_dir():
        pytest.skip(f"{data / '4q-dev'} not found (the real data sits beside the repository)")
    block = next(b for b in _python_blocks() if "load_dataset" in b and "split.json" in b)
    monkeypatch.chdir(tmp_path)
    exec(compile(block.replace("../shared/data", str(data)), "docs/datasets.md", "exec"), {})
    assert (tmp_path / "split.json").stat().st_size > 0
