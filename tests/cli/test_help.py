"""``--help`` good enough to be the man page: every option and argument of every command (nested
ones too: ``service install``, ``model list``) says what it is, and every command says what it
does; walked from the parser the program runs with, so a new bare option fails here."""

from __future__ import annotations

import argparse
import subprocess
import sys

from genre_daemon.cli import build_parser


def commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(path, parser, help given to it by its parent) of every command, depth first."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                yield (*path, name), sub, helps.get(name)
                yield from commands(sub, (*path, name))


def test_every_option_and_argument_of_every_command_is_described() -> None:
    bare = []
    seen = 0
    for path, parser, summary in commands(build_parser()):
        if not summary or not summary.strip():
            bare.append(f"{' '.join(path)}: no help line in the command list")
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction) or action.help == argparse.SUPPRESS:
                continue
            seen += 1
            if not (action.help or "").strip():
                bare.append(f"{' '.join(path)} {'/'.join(action.option_strings) or action.dest}: no help")
    assert seen > 80 and bare == []


def test_every_command_of_this_module_has_a_description_beyond_its_one_line() -> None:
    own = {"classify", "train", "evaluate", "run", "check-config", "status", "history", "undo", "import", "tag",
           "retrain", "web", "completion"}
    short = [" ".join(p) for p, parser, _ in commands(build_parser())
             if " ".join(p) in own and len(parser.description or "") < 80]
    assert short == []


def test_evaluate_help_describes_data_and_json() -> None:
    out = subprocess.run([sys.executable, "-m", "genre_daemon.cli", "evaluate", "--help"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out
    text = " ".join(out.stdout.split())
    assert "--data DIR the labelled files: one sub-folder per genre" in text
    assert "--json print the report as one JSON object" in text
    assert "example: genre-daemon evaluate" in text
