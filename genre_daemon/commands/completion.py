"""``genre-daemon completion bash|zsh|fish``: a shell completion script, made from the parser the
program runs with, so a new command or option completes without editing any script.

Why our own generator (docs/cli.md): shtab makes bash and zsh scripts from argparse but not fish;
argcomplete does all three but runs the program again on every TAB, importing it each time. This
walks the argparse parser once (:func:`walk`) and writes a static script: the command tree as
data (sub-commands, options with their help, what each option's value is) and one small
completing function per shell. What a value is comes from the option itself: its choices, a
``DIR`` metavar (folders: model folders, data folders), a path (files: ``--config``, ``--plot``),
anything else (a number) completes nothing.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

__all__ = ["SHELLS", "Command", "Option", "add_parsers", "cmd_completion", "script", "walk"]

SHELLS = ("bash", "zsh", "fish")

# What a value completes to: "file", "dir", "words a b c" (choices) or "any" (nothing to offer).
FILE, DIR, ANY = "file", "dir", "any"


@dataclass
class Option:
    """One option of a command: its flags, its help, and what its value is (None: a flag)."""

    flags: list[str]
    help: str
    value: str | None


@dataclass
class Command:
    """One command of the tree: ``path`` is its words after the program ("" for the program
    itself, ``service install``); its sub-commands with their help, options and what its
    positional arguments are (None: it takes none)."""

    path: str
    subcommands: dict[str, str] = field(default_factory=dict)
    options: list[Option] = field(default_factory=list)
    positional: str | None = None


def value_kind(action: argparse.Action) -> str:
    """What ``action``'s value completes to (see the module docstring)."""
    if action.choices is not None:
        return "words " + " ".join(str(c) for c in action.choices)
    metavar = action.metavar if isinstance(action.metavar, str) else ""
    if "DIR" in metavar and "FILE" not in metavar:
        return DIR
    if action.type is Path or "FILE" in metavar or metavar in ("PNG", "AUDIO", "PATH"):
        return FILE
    return ANY


def walk(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[Command]:
    """Every command of ``parser``, depth first, the program itself first."""
    here = Command(" ".join(path))
    below: list[Command] = []
    for action in parser._actions:  # argparse keeps no public list of them
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            for name, sub in action.choices.items():
                here.subcommands[name] = helps.get(name, "")
                below += walk(sub, (*path, name))
        elif action.help == argparse.SUPPRESS:
            continue
        elif action.option_strings:
            value = None if action.nargs == 0 else value_kind(action)
            here.options.append(Option(list(action.option_strings), action.help or "", value))
        elif here.positional is None:
            here.positional = value_kind(action)
    return [here, *below]


def _q(text: str) -> str:
    """``text`` in single quotes for bash, zsh and fish alike (no backslash in it: see _short)."""
    return "'" + text.replace("'", "'\\''") + "'"


def _short(text: str, limit: int = 90) -> str:
    """One line of help: the first clause, cut to ``limit`` characters."""
    text = re.sub(r"\s+", " ", text.replace("%%", "%").replace("\\", "/")).strip()
    first = re.split(r"(?<=[a-z)])[;.] ", text)[0]
    return first if len(first) <= limit else first[:limit - 3].rstrip() + "..."


def _case(fn: str, rows: list[tuple[str, str]], default: str, array: bool = False) -> str:
    """A shell function setting REPLY (or, with ``array``, the array reply) from ``case "$1"``."""
    var = "reply" if array else "REPLY"
    lines = [f"{fn}() {{", '    case "$1" in']
    for key, value in rows:
        lines.append(f"        {_q(key)}) {var}={value};;")
    lines += [f"        *) {var}={default};;", "    esac", "}"]
    return "\n".join(lines)


def _tables(commands: list[Command], fn: str, *, zsh: bool) -> str:
    """The command tree as four case functions (bash and zsh share them; zsh's lists carry
    each name's help as ``name:help``)."""
    def listing(pairs: list[tuple[str, str]]) -> str:
        if zsh:
            return "(" + " ".join(_q(f"{n}:{_short(h).replace(':', chr(92) + ':')}") for n, h in pairs) + ")"
        return _q(" ".join(n for n, _ in pairs))

    empty = "()" if zsh else "''"
    subs = [(c.path, listing(list(c.subcommands.items()))) for c in commands if c.subcommands]
    opts = [(c.path, listing([(f, o.help) for o in c.options for f in o.flags])) for c in commands]
    values = [(f"{c.path}|{f}", _q(o.value)) for c in commands for o in c.options if o.value for f in o.flags]
    positional = [(c.path, _q(c.positional)) for c in commands if c.positional and not c.subcommands]
    return "\n\n".join([
        _case(f"{fn}_subcommands", subs, empty, zsh), _case(f"{fn}_options", opts, empty, zsh),
        _case(f"{fn}_value", values, "''").replace('case "$1"', 'case "$1|$2"'),
        _case(f"{fn}_positional", positional, "''"),
    ])


BASH_BODY = r"""
# Which command the words before the cursor name: sub-command words, skipping options and
# the values of those that take one.
__FN_path() {
    local i word
    cmdpath=""
    for ((i = 1; i < COMP_CWORD; i++)); do
        word="${COMP_WORDS[i]}"
        if [[ "$word" == -* ]]; then
            __FN_value "$cmdpath" "$word"
            [[ -n "$REPLY" ]] && ((i++))
            continue
        fi
        __FN_subcommands "$cmdpath"
        [[ " $REPLY " == *" $word "* ]] && cmdpath="${cmdpath:+$cmdpath }$word"
    done
}

__FN_offer() {
    local IFS=$'\n'
    case "$1" in
        file) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$cur"));;
        dir) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -d -- "$cur"));;
        words\ *) COMPREPLY=($(IFS=$' \t\n'; compgen -W "${1#words }" -- "$cur"));;
    esac
}

_FN() {
    local cur="${COMP_WORDS[COMP_CWORD]}" prev="" cmdpath REPLY
    COMPREPLY=()
    ((COMP_CWORD > 1)) && prev="${COMP_WORDS[COMP_CWORD-1]}"
    __FN_path
    if [[ "$prev" == -* ]]; then
        __FN_value "$cmdpath" "$prev"
        if [[ -n "$REPLY" ]]; then
            __FN_offer "$REPLY"
            return 0
        fi
    fi
    if [[ "$cur" == -* ]]; then
        __FN_options "$cmdpath"
        __FN_offer "words $REPLY"
        return 0
    fi
    __FN_subcommands "$cmdpath"
    if [[ -n "$REPLY" ]]; then
        __FN_offer "words $REPLY"
        return 0
    fi
    __FN_positional "$cmdpath"
    __FN_offer "$REPLY"
}

complete -F _FN PROG
"""

ZSH_BODY = r"""
# Which command the words before the cursor name: sub-command words, skipping options and
# the values of those that take one.
__FN_path() {
    local i word
    local -a reply names
    cmdpath=""
    for ((i = 2; i < CURRENT; i++)); do
        word=${words[i]}
        if [[ $word == -* ]]; then
            __FN_value "$cmdpath" "$word"
            [[ -n $REPLY ]] && ((i++))
            continue
        fi
        __FN_subcommands "$cmdpath"
        names=(${reply%%:*})
        (( ${names[(Ie)$word]} )) && cmdpath=${cmdpath:+$cmdpath }$word
    done
}

__FN_offer() {
    local -a choices
    case $1 in
        file) _files ;;
        dir) _files -/ ;;
        words\ *) choices=(${=1#words }); compadd -a choices ;;
    esac
}

_FN() {
    local cmdpath REPLY cur=${words[CURRENT]} prev=${words[CURRENT-1]}
    local -a reply
    __FN_path
    if (( CURRENT > 2 )) && [[ $prev == -* ]]; then
        __FN_value "$cmdpath" "$prev"
        if [[ -n $REPLY ]]; then
            __FN_offer "$REPLY"
            return
        fi
    fi
    if [[ $cur == -* ]]; then
        __FN_options "$cmdpath"
        _describe -t options option reply
        return
    fi
    __FN_subcommands "$cmdpath"
    if (( ${#reply} )); then
        _describe -t commands command reply
        return
    fi
    __FN_positional "$cmdpath"
    __FN_offer "$REPLY"
}

if [[ ${zsh_eval_context[-1]} == loadautofunc ]]; then
    _FN "$@"
else
    compdef _FN PROG
fi
"""

FISH_BODY = r"""
# Which command the words before the cursor name: sub-command words, skipping options and
# the values of those that take one.
function __FN_path
    set -l cmdpath ''
    set -l skip 0
    for word in (commandline -opc)[2..-1]
        if test $skip = 1
            set skip 0
            continue
        end
        if string match -q -- '-*' $word
            contains -- "$cmdpath|$word" $__FN_valued; and set skip 1
            continue
        end
        if contains -- "$cmdpath|$word" $__FN_commands
            if test -z "$cmdpath"
                set cmdpath $word
            else
                set cmdpath "$cmdpath $word"
            end
        end
    end
    echo $cmdpath
end

function __FN_at --argument-names want
    set -l here (__FN_path)
    test "$here" = "$want"
end

complete -c PROG -f
"""


def _bash(commands: list[Command], prog: str, fn: str) -> str:
    return _tables(commands, f"__{fn}", zsh=False) + "\n" + BASH_BODY.replace("FN", fn).replace("PROG", prog)


def _zsh(commands: list[Command], prog: str, fn: str) -> str:
    return (f"#compdef {prog}\n\n" + _tables(commands, f"__{fn}", zsh=True) + "\n"
            + ZSH_BODY.replace("FN", fn).replace("PROG", prog))


def _fish_value(value: str) -> str:
    """The arguments of a fish ``complete`` line for a value of this kind."""
    if value == FILE:
        return "-r -F"
    if value == DIR:
        return "-r -x -a '(__fish_complete_directories (commandline -ct))'"
    if value.startswith("words "):
        return "-r -x -a " + _q(value.removeprefix("words "))
    return "-r -x"


def _fish(commands: list[Command], prog: str, fn: str) -> str:
    pairs = [f"{c.path}|{s}" for c in commands for s in c.subcommands]
    valued = [f"{c.path}|{f}" for c in commands for o in c.options if o.value for f in o.flags]
    lines = [f"set -g __{fn}_commands " + " ".join(_q(p) for p in pairs),
             f"set -g __{fn}_valued " + " ".join(_q(v) for v in valued),
             FISH_BODY.replace("FN", fn).replace("PROG", prog)]
    for c in commands:
        at = f"-n {_q(f'__{fn}_at {_q(c.path)}')}"
        for name, text in c.subcommands.items():
            lines.append(f"complete -c {prog} {at} -a {_q(name)} -d {_q(_short(text))}")
        for o in c.options:
            flags = " ".join(f"-l {f[2:]}" if f.startswith("--") else f"-s {f[1:]}" for f in o.flags)
            value = f" {_fish_value(o.value)}" if o.value else ""
            lines.append(f"complete -c {prog} {at} {flags}{value} -d {_q(_short(o.help))}")
        if c.positional and not c.subcommands and c.positional != ANY:
            lines.append(f"complete -c {prog} {at} {_fish_value(c.positional).removeprefix('-r ')}")
    return "\n".join(lines) + "\n"


def script(shell: str, parser: argparse.ArgumentParser) -> str:
    """The completion script of ``parser``'s program for ``shell`` (bash, zsh or fish)."""
    prog = parser.prog
    fn = re.sub(r"\W", "_", prog)
    header = (f"# {shell} completion for {prog}, made by `{prog} completion {shell}` from its own parser.\n"
              f"# {_HOW[shell].format(prog=prog)}\n")
    body = {"bash": _bash, "zsh": _zsh, "fish": _fish}[shell](walk(parser), prog, fn)
    if shell == "zsh":  # #compdef must stay the first line
        first, rest = body.split("\n", 1)
        return f"{first}\n{header}{rest}"
    return header + "\n" + body


_HOW = {
    "bash": "Load it: source <({prog} completion bash), or save it as "
            "~/.local/share/bash-completion/completions/{prog}",
    "zsh": "Load it: save it as _{prog} in a folder of $fpath before compinit runs, "
           "or source <({prog} completion zsh) after compinit",
    "fish": "Load it: {prog} completion fish > ~/.config/fish/completions/{prog}.fish",
}


def cmd_completion(args: argparse.Namespace, out: TextIO) -> int:
    """Print the completion script of the program's own parser (``args.parser``, the one it parsed
    this command line with)."""
    out.write(script(args.shell, args.parser))
    return 0


def add_parsers(sub: Any, config_help: str, root: argparse.ArgumentParser) -> None:
    """The parser of completion; ``root``, the program's parser, is the one its scripts complete."""
    p = sub.add_parser(
        "completion", help="print a shell completion script (bash, zsh or fish)",
        description="Print a completion script for SHELL: commands, options, their choices, files for config "
                    "and file options, folders for DIR options (model and data folders). It is made from the "
                    "program's own parser, so it completes what this version has.",
        epilog="examples: source <(genre-daemon completion bash)   (in ~/.bashrc);  "
               "genre-daemon completion zsh > \"${fpath[1]}/_genre-daemon\";  "
               "genre-daemon completion fish > ~/.config/fish/completions/genre-daemon.fish")
    p.add_argument("shell", choices=SHELLS, help="the shell to complete in")
    p.set_defaults(func=cmd_completion, parser=root)
