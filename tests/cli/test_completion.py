"""``genre-daemon completion bash|zsh|fish``: each script is accepted by its shell, a real bash (and
fish) session that loads it completes commands, options, choices and folders, and the scripts are
made from the parser the program runs with (an option added to it completes with no other change)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from genre_daemon.cli import build_parser
from genre_daemon.commands.completion import script


def completion(shell: str) -> str:
    out = subprocess.run([sys.executable, "-m", "genre_daemon.cli", "completion", shell], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0 and out.stderr == "", out
    return out.stdout


def bash_complete(script_path: Path, *words: str) -> list[str]:
    """What a bash session that sourced the script offers for ``words`` (the last is the one
    being completed), driving its completion function as readline does: COMP_WORDS, COMP_CWORD."""
    line = " ".join(f"'{w}'" for w in words)
    driver = (f'source "$1"\nCOMP_WORDS=({line}); COMP_CWORD={len(words) - 1}\n'
              '$(complete -p genre-daemon | sed -E "s/.*-F ([^ ]+).*/\\1/")\n'
              'printf "%s\\n" "${COMPREPLY[@]}"\n')
    out = subprocess.run(["bash", "-c", driver, "bash", str(script_path)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and out.stderr == "", out
    return out.stdout.splitlines()


@pytest.fixture(scope="module")
def bash_script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("completion") / "genre-daemon.bash"
    path.write_text(completion("bash"))
    return path


def test_bash_accepts_the_script(bash_script: Path) -> None:
    out = subprocess.run(["bash", "-n", str(bash_script)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and out.stderr == "", out


def test_bash_completes_commands_options_choices_and_folders(bash_script: Path, tmp_path: Path) -> None:
    assert bash_complete(bash_script, "genre-daemon", "sta") == ["status"]
    assert bash_complete(bash_script, "genre-daemon", "status", "--j") == ["--json"]
    assert bash_complete(bash_script, "genre-daemon", "--verbose", "service", "install", "--sy") == ["--systemd"]
    assert bash_complete(bash_script, "genre-daemon", "model", "") == ["list", "rollback"]
    assert bash_complete(bash_script, "genre-daemon", "evaluate", "--engine", "") == ["local", "ray"]
    assert bash_complete(bash_script, "genre-daemon", "completion", "") == ["bash", "zsh", "fish"]
    # the value of an option is not taken for a command: `status --config run --j` is status's --json
    assert bash_complete(bash_script, "genre-daemon", "status", "--config", "run", "--j") == ["--json"]
    (tmp_path / "music one").mkdir()
    (tmp_path / "music.yaml").write_text("inbox: /x\n")
    prefix = str(tmp_path / "music")
    assert bash_complete(bash_script, "genre-daemon", "import", prefix) == [str(tmp_path / "music one")]
    assert sorted(bash_complete(bash_script, "genre-daemon", "status", "--config", prefix)) == [
        str(tmp_path / "music one"), str(tmp_path / "music.yaml")]
    assert bash_complete(bash_script, "genre-daemon", "classify", "--model", prefix) == [str(tmp_path / "music one")]


def test_the_script_is_made_from_the_parser_the_program_runs_with(tmp_path: Path) -> None:
    parser = build_parser()
    status = next(a for a in parser._actions if a.dest == "command").choices["status"]
    status.add_argument("--brand-new", metavar="DIR", help="an option no script was edited for")
    path = tmp_path / "c.bash"
    path.write_text(script("bash", parser))
    assert bash_complete(path, "genre-daemon", "status", "--bra") == ["--brand-new"]
    (tmp_path / "only-a-dir").mkdir()
    assert bash_complete(path, "genre-daemon", "status", "--brand-new", str(tmp_path / "only")) == [
        str(tmp_path / "only-a-dir")]


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed (scripts/setup.sh installs it)")
def test_zsh_accepts_the_script_and_registers_it_with_compinit(tmp_path: Path) -> None:
    path = tmp_path / "_genre-daemon"
    path.write_text(completion("zsh"))
    assert path.read_text().startswith("#compdef genre-daemon\n")
    checked = subprocess.run(["zsh", "-n", str(path)], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0 and checked.stderr == "", checked
    loaded = subprocess.run(["zsh", "-f", "-c", 'autoload -U compinit && compinit -u -d "$2" && source "$1" '
                             '&& print -r -- $_comps[genre-daemon]', "zsh", str(path), str(tmp_path / "zcompdump")],
                            capture_output=True, text=True, timeout=30)
    assert loaded.returncode == 0 and loaded.stdout == "_genre_daemon\n", loaded


ZSH_SESSION = r"""
zmodload zsh/zpty
zpty z zsh -f -i
zpty -w z "PROMPT='%% '; fpath=($1 \$fpath); autoload -U compinit; compinit -u -d $1/dump; print REA\\DY"
zpty -r -m z out '*READY*'
zpty -n -w z "$2"$'\t'
zpty -r -m z out "*$3*"
print -r -- COMPLETED
zpty -d z
"""


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed (scripts/setup.sh installs it)")
@pytest.mark.parametrize("line, then", [("genre-daemon sta", "genre-daemon status"),
                                        ("genre-daemon status --j", "genre-daemon status --json"),
                                        ("genre-daemon model r", "genre-daemon model rollback")])
def test_zsh_completes_with_the_script_in_a_real_session(tmp_path: Path, line: str, then: str) -> None:
    """An interactive zsh on a pty (zpty) with the script in its fpath: TAB after ``line``
    turns it into ``then`` (the driver waits for that text on the terminal; it never comes: timeout)."""
    (tmp_path / "_genre-daemon").write_text(completion("zsh"))
    out = subprocess.run(["zsh", "-f", "-c", ZSH_SESSION, "zsh", str(tmp_path), line, then], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0 and out.stdout == "COMPLETED\n", out


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed (scripts/setup.sh installs it)")
def test_fish_accepts_the_script_and_completes_with_it(tmp_path: Path) -> None:
    path = tmp_path / "genre-daemon.fish"
    path.write_text(completion("fish"))
    checked = subprocess.run(["fish", "--no-execute", str(path)], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0 and checked.stderr == "", checked

    def fish_complete(line: str) -> list[str]:
        out = subprocess.run(["fish", "--no-config", "-c", f'source "{path}"; complete -C "{line}"'],
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out
        return [row.split("\t")[0] for row in out.stdout.splitlines()]

    assert fish_complete("genre-daemon sta") == ["status"]
    assert fish_complete("genre-daemon status --j") == ["--json"]
    assert fish_complete("genre-daemon model ") == ["list", "rollback"]
    assert sorted(fish_complete("genre-daemon completion ")) == ["bash", "fish", "zsh"]
