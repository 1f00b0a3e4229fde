"""Every verb's --help reads well at 80 columns (issue 30): no line wider than the
terminal, paragraphs rewrapped (not broken where the docstring was), brackets shown."""

from __future__ import annotations

import re
from typing import Any

import typer
from typer.testing import CliRunner

from edgesleep.cli import app


def _commands(command: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    out = [(path, command)]
    for name, sub in getattr(command, "commands", {}).items():
        out += _commands(sub, (*path, name))
    return out


def _words(text: str) -> str:
    """The text without its whitespace (the help wraps lines, hyphenated words included)."""
    return re.sub(r"\s+", "", text)


def test_every_help_fits_80_columns_and_reads_as_written() -> None:
    runner = CliRunner()
    root = typer.main.get_command(app)
    for path, command in _commands(root):
        result = runner.invoke(app, [*path, "--help"], terminal_width=80, env={"COLUMNS": "80"})
        assert result.exit_code == 0, (path, result.output)
        wide = [line for line in result.output.splitlines() if len(line) > 80]
        assert not wide, (path, wide)
        if command.help:  # the docstring's paragraphs, rewrapped, word for word
            for paragraph in command.help.split("\n\n"):
                assert _words(paragraph) in _words(result.output), (path, paragraph)
        for param in command.params:
            if getattr(param, "help", None) and not getattr(param, "hidden", False):
                assert _words(param.help) in _words(result.output), (path, param.help)
    train = runner.invoke(app, ["train", "--help"], terminal_width=80).output
    assert _words("TOML with [model] (any config field") in _words(train)
