"""Every command teaches (--help with an example) and is in the README."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer.main

from erasure.cli import app

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def commands(group, prefix: tuple[str, ...] = ()):
    for name, cmd in group.commands.items():
        path = prefix + (name,)
        if hasattr(cmd, "commands"):  # a group (typer vendors its own click)
            yield from commands(cmd, path)
        else:
            yield path, cmd


ALL = list(commands(typer.main.get_command(app)))


def test_there_are_commands():
    assert len(ALL) >= 15


@pytest.mark.parametrize(("path", "cmd"), ALL, ids=[" ".join(p) for p, _ in ALL])
def test_command_help_ends_with_an_example(path, cmd):
    assert cmd.help and "Example" in cmd.help, f"`erasure {' '.join(path)}` --help has no example"


@pytest.mark.parametrize(("path", "cmd"), ALL, ids=[" ".join(p) for p, _ in ALL])
def test_command_is_in_the_readme(path, cmd):
    assert f"`erasure {' '.join(path)}" in README
