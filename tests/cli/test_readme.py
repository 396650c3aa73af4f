"""Every command of the README's "Command line" block runs as written on `fastvpc demo --write`'s
files (the root-only lab/live lines are run by tests/cli/test_lab.py and tests/live)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from fastvpc.cli import main

README = Path(__file__).resolve().parents[2] / "README.md"


def _commands() -> list[list[str]]:
    text = README.read_text()
    section = text[text.index("## Command line"):text.index("## Python API")]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block is not None
    cmds = []
    for line in block.group(1).splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("sudo "):
            continue
        line = re.sub(r"\[[^\]]*\]", "", line)          # optional parts, shown in brackets
        argv = shlex.split(line)
        assert argv[0] == "fastvpc", line
        cmds.append(argv[1:])
    return cmds


def test_readme_first_lines_are_the_two_fresh_machine_commands():
    lines = README.read_text().splitlines()
    assert lines[2:6] == ["```bash", "pip install . && fastvpc demo",
                          'pip install ".[test]" && python -m pytest', "```"]


@pytest.mark.parametrize("argv", _commands(), ids=lambda a: " ".join(a[:2]))
def test_readme_command_runs_as_written(argv, tmp_path, monkeypatch, capsys):
    assert main(["demo", "--write", str(tmp_path)]) == 0
    monkeypatch.chdir(tmp_path)
    if argv[:1] == ["demo"]:
        argv = argv + ["--frames", "20000"]                # the same command, a smaller batch
    if argv[:2] == ["trace", "imported.json"]:
        assert main(["import-aws", "aws_configs", "-o", "imported.json"]) == 0
    if "--format" in argv and argv[argv.index("--format") + 1] in ("svg", "png"):
        from conftest import require_tool

        require_tool("dot")
    code = main(argv)
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "Traceback" not in out.err
