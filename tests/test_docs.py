"""The manual names only what exists: every `edgesleep` command and option written in the
README and the docs (code blocks and inline code) is one the CLI has (issue 30)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import typer

from edgesleep.cli import app

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
PAGES = [p for p in PAGES if "_generated" not in p.parts and "_build" not in p.parts]


def _commands(text: str) -> list[str]:
    """`edgesleep ...` command lines: in fenced blocks (continuation lines joined) and in
    inline code."""
    found = []
    for block in re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = line.strip().split(" #")[0]
            for part in re.split(r"&&|\|\||;|\||&", line):
                part = part.strip()
                if part.startswith("edgesleep "):
                    found.append(part)
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    found += [m for m in re.findall(r"`(edgesleep [^`]+)`", prose)]
    return found


def _check(line: str, root: Any) -> list[str]:
    try:
        words = shlex.split(line)[1:]
    except ValueError:
        words = line.split()[1:]
    command = root
    while hasattr(command, "commands") and words and not words[0].startswith("-"):
        if "|" in words[0]:  # "train|distill": each of them
            rest = " ".join(words[1:])
            return [e for alt in words[0].split("|") for e in _check(f"x {alt} {rest}", command)]
        sub = command.commands.get(words[0])
        if sub is None:
            if words[0].isupper() or "/" in words[0] or "." in words[0] or "<" in words[0]:
                break  # an argument (MODEL_DIR, a path)
            return [f"{line!r}: no command {words[0]!r}"]
        command, words = sub, words[1:]
    known = {opt for p in command.params for opt in (*p.opts, *p.secondary_opts)}
    known |= {"--help"}
    return [
        f"{line!r}: {command.name} has no option {word.split('=')[0]}"
        for word in words
        if word.startswith("--") and word.split("=")[0] not in known
    ]


def test_every_command_and_option_named_in_the_manual_exists() -> None:
    root = typer.main.get_command(app)  # typer's own (vendored) click command tree
    errors, seen = [], 0
    for page in PAGES:
        for line in _commands(page.read_text()):
            seen += 1
            errors += [f"{page.relative_to(ROOT)}: {e}" for e in _check(line, root)]
    assert seen > 50  # the manual does name commands
    assert not errors, "\n".join(errors)


def test_the_readme_links_to_files_that_exist() -> None:
    text = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text)
    assert links  # the README is the way in: it links into the manual
    missing = [link for link in links if not (ROOT / link).exists()]
    assert not missing, missing
