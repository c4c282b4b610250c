"""The command table: one module and one row make a command, with its help, its `--help` and dispatch;
the protocol's words stay the protocol's, and a `get` never loads the table."""

from __future__ import annotations

import ast
import contextlib
import importlib
import inspect
import io
import os
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest

from helper import NAME, commands
from helper.commands import Command, CommandModule
from helper.protocol_frontend import ACTIONS, USAGE
from tests.conftest import Result, call, get_in_fresh_process, run_helper

GREET = '''\
"""`greet NAME`: a command that exists only in this test, written as a real one is."""

from __future__ import annotations

import argparse
from typing import IO

from helper.errors import UsageError

DESCRIPTION = "Says hello to NAME; refuses the name nobody."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name")
    parser.add_argument("--shout", action="store_true", help="in capitals")


def run(args: argparse.Namespace, stdin: IO[bytes], stdout: IO[str]) -> int:
    if args.name == "nobody":
        raise UsageError("greet: nobody is there to greet")
    text = f"hello, {args.name}"
    stdout.write((text.upper() if args.shout else text) + "\\n")
    return 0
'''
GREET_SUMMARY = "say hello to NAME (a test's command)"


@pytest.fixture
def greet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Command]:
    """`greet` registered as a later issue adds a command: its module, and one row appended to the table."""
    (tmp_path / "switchboard_test_greet.py").write_text(GREET)
    monkeypatch.syspath_prepend(str(tmp_path))
    row = Command("greet", GREET_SUMMARY,
                  lambda: cast(CommandModule, importlib.import_module("switchboard_test_greet")))
    monkeypatch.setattr(commands, "COMMANDS", (*commands.COMMANDS, row))
    yield row
    sys.modules.pop("switchboard_test_greet", None)


def answer(result: Result) -> tuple[int, str]:
    return result.code, result.out


def help_lines() -> list[str]:
    result = call(["--help"])
    assert result.code == 0
    return result.out.splitlines()


def column() -> int:
    """The help's name column: two spaces wider than the longest action or command word, at least 10."""
    return max(10, 2 + max(len(word) for word in [*ACTIONS, *(row.name for row in commands.COMMANDS)]))


def test_a_command_made_of_one_module_and_one_row_is_in_the_help_and_runs(greet: Command) -> None:
    lines = help_lines()
    assert f"       {NAME} greet [--shout] name" in lines
    assert f"  {'greet'.ljust(column() - 1)} {GREET_SUMMARY}" in lines
    own = call(["greet", "--help"])
    assert own.code == 0 and own.out.startswith(f"usage: {NAME} greet [-h] [--shout] name")
    assert "Says hello to NAME" in own.out and "--shout" in own.out and "in capitals" in own.out
    assert answer(call(["greet", "world", "--shout"])) == (0, "HELLO, WORLD\n")


def test_an_added_command_follows_the_one_line_error_policy(greet: Command) -> None:
    assert answer(call(["greet", "nobody"])) == (1, "greet: nobody is there to greet\n")
    missing = call(["greet"])
    assert missing.code == 1 and missing.out.count("\n") == 1
    assert "the following arguments are required: name" in missing.out
    assert f"(see {NAME} greet --help)" in missing.out


def test_without_its_row_the_command_does_not_exist() -> None:
    """The control of the two tests above: the module alone is not a command."""
    assert answer(call(["greet", "world"])) == (1, f"{NAME}: unknown action: greet\n")
    assert not [line for line in help_lines() if "greet" in line]


def test_a_row_can_send_its_errors_to_stderr_for_a_program_facing_command(
        greet: Command, monkeypatch: pytest.MonkeyPatch) -> None:
    """Room for the kubelet plugin: stdout carries answers only, an error is one line on stderr."""
    row = Command("greet-plugin", "greet, errors on stderr", greet.load, errors_to_stderr=True)
    monkeypatch.setattr(commands, "COMMANDS", (*commands.COMMANDS, row))
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        result = call(["greet-plugin", "nobody"])
    assert (*answer(result), err.getvalue()) == (1, "", "greet: nobody is there to greet\n")
    assert call(["greet", "nobody"]).out == "greet: nobody is there to greet\n"  # the default row: stdout


@pytest.mark.parametrize("row", commands.COMMANDS, ids=lambda row: row.name)
@pytest.mark.parametrize("form", [["--help"], ["-h"], "help CMD"], ids=str)
def test_every_command_prints_its_usage_and_options_and_exits_0(row: Command, form: list[str] | str) -> None:
    argv = ["help", row.name] if form == "help CMD" else [row.name, *form]
    result = call(argv)
    assert result.code == 0, result.out
    assert result.out.startswith(f"usage: {NAME} {row.name} ")
    assert row.summary in result.out and "-h, --help" in result.out


@pytest.mark.parametrize("action", list(ACTIONS))
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_protocol_actions_answer_help_with_the_protocol_usage_and_exit_1(action: str, flag: str) -> None:
    assert answer(call([action, flag])) == (1, USAGE + "\n")


def test_the_help_lists_every_command_of_the_table_and_only_those(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = help_lines()
    assert lines[0] == USAGE
    for row in commands.COMMANDS:
        assert f"  {row.name.ljust(column() - 1)} {row.summary}" in lines
        assert any(line.startswith(f"       {NAME} {row.name}") for line in lines), row.name
    for action, summary in ACTIONS.items():
        assert f"  {action.ljust(column() - 1)} {summary}" in lines
    monkeypatch.setattr(commands, "COMMANDS", tuple(row for row in commands.COMMANDS if row.name != "routes"))
    assert not [line for line in help_lines() if "routes" in line.split()]


@pytest.mark.parametrize("row", commands.COMMANDS, ids=lambda row: row.name)
def test_every_loader_is_a_literal_import_of_its_module(row: Command) -> None:
    """PyInstaller follows only literal imports: a loader built from a string would leave the module out."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(row.load)))
    imported = [alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level == 1
                for alias in node.names]
    assert len(imported) == 1, imported
    assert cast(object, row.load()) is sys.modules[f"helper.commands.{imported[0]}"]


def test_a_get_loads_neither_argparse_nor_the_command_table() -> None:
    code, out, modules = get_in_fresh_process("not-stored.example", dict(os.environ))
    assert code == 1, out
    assert "helper.protocol_frontend" in modules  # the control: the probe saw the front end load
    assert sorted(m for m in modules if m == "argparse" or m.startswith("helper.commands")) == []


def test_the_executable_answers_command_help_and_keeps_the_protocol_usage() -> None:
    env = dict(os.environ)
    assert run_helper(["resolve", "--help"], None, env=env).out.startswith(f"usage: {NAME} resolve ")
    assert answer(run_helper(["get", "--help"], None, env=env)) == (1, USAGE + "\n")
