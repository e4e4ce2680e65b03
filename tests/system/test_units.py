"""Service units: rendered for real paths, checked by systemd-analyze and plistlib, installed
into a tmp root through the real ``genre-daemon service install`` code path."""

from __future__ import annotations

import argparse
import io
import os
import plistlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from genre_daemon.config import parse_settings
from genre_daemon.system.units import (
    Folders, UnitError, add_service_parser, cmd_service_install, find_executable, install,
    read_template, render, render_systemd, sandbox_rules, target_path, unit_quote,
)

ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")
EXE = find_executable()


def settings_in(root: Path, **extra: object):
    return parse_settings({
        "inbox": str(root / "inbox"), "library": str(root / "library"),
        "review_dir": str(root / "library" / "_review"), "quarantine_dir": str(root / "inbox" / ".q"),
        "state_dir": str(root / "state"), **extra,
    })


def write_config(root: Path) -> Path:
    config = root / "config.yaml"
    config.write_text("".join(f"{k}: '{root / v}'\n" for k, v in {
        "inbox": "inbox", "library": "library", "review_dir": "library/_review",
        "quarantine_dir": "inbox/.q", "state_dir": "state"}.items()))
    return config


def verify(text: str, where: Path) -> subprocess.CompletedProcess[str]:
    unit = where / "genre-daemon.service"
    unit.write_text(text)
    return subprocess.run([ANALYZE, "verify", str(unit)], capture_output=True, text=True, timeout=60)


def exposure(text: str, where: Path) -> float:
    unit = where / "genre-daemon.service"
    unit.write_text(text)
    out = subprocess.run([ANALYZE, "security", "--offline=true", str(unit)],
                         capture_output=True, text=True, timeout=60)
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d)", out.stdout)
    assert match, out.stdout + out.stderr
    return float(match.group(1))


def directives(text: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            found.setdefault(key, []).append(value)
    return found


# --- systemd -------------------------------------------------------------------------------------


@needs_analyze
@pytest.mark.parametrize("kind", ["system", "user"])
def test_rendered_units_pass_systemd_analyze_verify(kind: str, tmp_path: Path) -> None:
    text = render(kind, exe=EXE, config=tmp_path / "config.yaml", settings=settings_in(Path("/srv/music")),
                  home=tmp_path)
    assert not re.search(r"@[A-Z_]+@", text)
    result = verify(text, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == ""


@needs_analyze
def test_system_unit_exposure_is_at_most_2(tmp_path: Path) -> None:
    text = render("system", exe=EXE, config=Path("/etc/genre-daemon/config.yaml"),
                  settings=settings_in(Path("/srv/music")), home=tmp_path)
    assert exposure(text, tmp_path) <= 2.0


@needs_analyze
def test_folders_under_home_are_bound_into_a_tmpfs_home(tmp_path: Path) -> None:
    home = Path("/home/al ice/Mu:sic 100%")
    text = render("system", exe=EXE, config=home / "config.yaml", settings=settings_in(home), home=tmp_path)
    d = directives(text)
    assert d["ProtectHome"] == ["tmpfs"]
    # only the outermost writable folders; a missing one must stop the start ("-" would let
    # the daemon write into a throw-away tmpfs)
    assert d["BindPaths"] == ['"/home/al ice/Mu:sic 100%%/inbox"', '"/home/al ice/Mu:sic 100%%/library"',
                              '"/home/al ice/Mu:sic 100%%/state"']
    assert '"-/home/al ice/Mu:sic 100%%/config.yaml"' in d["BindReadOnlyPaths"]
    result = verify(text, tmp_path)
    assert result.returncode == 0, result.stderr
    assert exposure(text, tmp_path) <= 2.0


def test_folders_outside_home_keep_homes_hidden() -> None:
    protect, lines = sandbox_rules(Folders(
        writable=(Path("/srv/in"), Path("/srv/lib"), Path("/srv/lib/_review"), Path("/srv/in/.q"),
                  Path("/var/lib/genre-daemon")),
        readable=(Path("/etc/genre-daemon/config.yaml"), Path("/opt/venv"))))
    assert protect == "yes"
    assert lines == ['ReadWritePaths="-/srv/in"', 'ReadWritePaths="-/srv/lib"',
                     'ReadWritePaths="-/var/lib/genre-daemon"']


def test_system_unit_has_the_pinned_service_settings(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    d = directives(render("system", exe=EXE, config=config, settings=settings_in(Path("/srv/m")), home=tmp_path))
    assert d["ExecStart"] == [f'"{EXE}" run --config "{config}"']
    for key, value in {"Type": "notify", "NotifyAccess": "main", "WatchdogSec": "60", "Restart": "on-failure",
                       "User": "genre-daemon", "StateDirectory": "genre-daemon", "UMask": "0027",
                       "ProtectSystem": "strict", "NoNewPrivileges": "yes", "PrivateTmp": "yes",
                       "PrivateDevices": "yes", "RestrictAddressFamilies": "AF_UNIX",
                       "ExecReload": "/bin/kill -HUP $MAINPID"}.items():
        assert d[key] == [value], key
    assert "@system-service" in d["SystemCallFilter"]
    assert "MemoryDenyWriteExecute" not in d  # torch's oneDNN JIT needs W+X pages


def test_user_unit_leaves_out_what_a_user_manager_ignores(tmp_path: Path) -> None:
    d = directives(render("user", exe=EXE, config=tmp_path / "c.yaml", settings=settings_in(tmp_path), home=tmp_path))
    for key in ("User", "Group", "CapabilityBoundingSet", "AmbientCapabilities", "DevicePolicy",
                "IPAddressDeny", "PrivateUsers", "ProtectSystem", "ProtectHome", "StateDirectory"):
        assert key not in d, key
    assert d["WantedBy"] == ["default.target"] and d["Type"] == ["notify"]


@pytest.mark.parametrize("path", ["relative/path", "/with\nnewline"])
def test_paths_a_unit_cannot_hold_are_refused(path: str) -> None:
    with pytest.raises(UnitError, match="absolute|newline"):
        unit_quote(Path(path))


def test_exec_start_escapes_specifiers_and_dollars() -> None:
    text = render_systemd("ExecStart=@EXEC@ run --config @CONFIG@\n", exe=Path('/opt/a "b"/x'),
                          config=Path("/c/$HOME/100%.yaml"))
    assert text == 'ExecStart="/opt/a \\"b\\"/x" run --config "/c/$$HOME/100%%.yaml"\n'


# --- launchd -------------------------------------------------------------------------------------


def test_shipped_plist_template_is_valid() -> None:
    data = plistlib.loads(read_template("launchd").encode())
    assert data["Label"] == "com.genre-daemon"


def test_rendered_plist_parses_with_the_pinned_keys(tmp_path: Path) -> None:
    config = tmp_path / "a & <b>" / "config.yaml"
    data = plistlib.loads(render("launchd", exe=EXE, config=config, settings=settings_in(tmp_path),
                                 home=tmp_path).encode())
    assert data["Label"] == "com.genre-daemon"
    assert data["ProgramArguments"] == [str(EXE), "run", "--config", str(config)]
    assert data["RunAtLoad"] is True
    assert data["KeepAlive"] == {"SuccessfulExit": False}
    assert data["ProcessType"] == "Background"
    log = str(tmp_path / "Library" / "Logs" / "genre-daemon.log")
    assert data["StandardOutPath"] == data["StandardErrorPath"] == log
    assert "/opt/homebrew/bin" in data["EnvironmentVariables"]["PATH"].split(":")


# --- install -------------------------------------------------------------------------------------


def run_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *argv: str) -> tuple[int, str, str]:
    """``genre-daemon service install ARGV`` through the real argparse wiring, into tmp_path/root."""
    monkeypatch.setenv("GENRE_DAEMON_UNIT_ROOT", str(tmp_path / "root"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    parser = argparse.ArgumentParser(prog="genre-daemon")
    add_service_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["service", "install", *argv])
    out, err = io.StringIO(), io.StringIO()
    code = args.func(args, out, err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("flags, relative", [
    (["--systemd"], "etc/systemd/system/genre-daemon.service"),
    (["--systemd", "--user"], "{home}/.config/systemd/user/genre-daemon.service"),
    (["--launchd"], "{home}/Library/LaunchAgents/com.genre-daemon.plist"),
])
def test_install_writes_where_the_manager_looks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                flags: list[str], relative: str) -> None:
    config = write_config(tmp_path)
    code, out, _ = run_install(tmp_path, monkeypatch, *flags, "--config", str(config))
    target = tmp_path / "root" / relative.format(home=str(tmp_path / "home").lstrip("/"))
    assert code == 0
    assert target.is_file() and str(target) in out
    assert str(config) in target.read_text() and str(EXE) in target.read_text()
    assert "enable --now genre-daemon" in out or "launchctl bootstrap gui/$(id -u)" in out


def test_print_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = write_config(tmp_path)
    code, out, _ = run_install(tmp_path, monkeypatch, "--systemd", "--config", str(config), "--print")
    assert code == 0 and out.startswith("# genre-daemon as a system service")
    assert f'ReadWritePaths="-{tmp_path / "library"}"' in out
    assert not (tmp_path / "root").exists()


def test_edited_unit_is_kept_unless_forced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = write_config(tmp_path)
    assert run_install(tmp_path, monkeypatch, "--systemd", "--config", str(config))[0] == 0
    unit = tmp_path / "root" / "etc/systemd/system/genre-daemon.service"
    fresh = unit.read_text()
    edited = fresh.replace("Nice=10", "Nice=5")
    unit.write_text(edited)

    code, out, err = run_install(tmp_path, monkeypatch, "--systemd", "--config", str(config))
    assert code == 1
    assert "differs" in err and "--force" in err and "diff -u" in err and str(unit) in err
    assert unit.read_text() == edited

    code, out, _ = run_install(tmp_path, monkeypatch, "--systemd", "--config", str(config), "--force")
    assert code == 0 and "replaced" in out
    assert unit.read_text() == fresh
    assert unit.with_name("genre-daemon.service.bak").read_text() == edited


def test_identical_unit_is_left_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = write_config(tmp_path)
    run_install(tmp_path, monkeypatch, "--launchd", "--config", str(config))
    plist = tmp_path / "root" / str(tmp_path / "home").lstrip("/") / "Library/LaunchAgents/com.genre-daemon.plist"
    before = plist.stat()
    code, out, _ = run_install(tmp_path, monkeypatch, "--launchd", "--config", str(config))
    assert code == 0 and "already up to date" in out
    after = plist.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_install_replaces_a_symlink_not_its_target(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.service"
    elsewhere.write_text("someone else's unit\n")
    link = tmp_path / "units" / "genre-daemon.service"
    link.parent.mkdir()
    link.symlink_to(elsewhere)
    outcome = install("new\n", link, force=True)
    assert outcome.action == "replaced"
    assert not link.is_symlink() and link.read_text() == "new\n"
    assert elsewhere.read_text() == "someone else's unit\n"


def test_unreadable_config_falls_back_to_defaults_and_says_so(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("inbox: [\n")
    code, out, err = run_install(tmp_path, monkeypatch, "--systemd", "--user", "--config", str(bad), "--print")
    assert code == 0 and str(bad) in err and "default folders" in err
    assert f'--config "{bad}"' in out


def test_user_flag_needs_systemd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UnitError, match="--user goes with --systemd"):
        run_install(tmp_path, monkeypatch, "--launchd", "--user")


def test_target_paths_without_a_root() -> None:
    home = Path("/home/u")
    assert target_path("system", home=home) == Path("/etc/systemd/system/genre-daemon.service")
    assert target_path("user", home=home) == home / ".config/systemd/user/genre-daemon.service"
    assert target_path("launchd", home=home) == home / "Library/LaunchAgents/com.genre-daemon.plist"
