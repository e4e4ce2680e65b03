"""Service definitions: render the systemd units and the launchd plist, and install one.

The templates live in ``service/`` (placeholders ``@EXEC@``, ``@CONFIG@``, ``@PROTECT_HOME@``,
``@PATH_RULES@``, ``@LOG@``). Rendering is pure: values in, text out. Only :func:`install` and
:func:`cmd_service_install` touch the filesystem. The system unit is sandboxed with
``ProtectSystem=strict``; the folders the daemon writes (from the config) are the only writable
places, and ``ProtectHome=`` is ``yes`` unless a folder lives under a home directory, in which
case it is ``tmpfs`` with exactly those folders bound in.
"""

from __future__ import annotations

import argparse
import os
import plistlib
import shutil
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TextIO

from genre_daemon.config import Settings, WebSettings, default_config_path, load_settings, parse_settings, split_listen
from genre_daemon.errors import ConfigError, GenreDaemonError
from genre_daemon.resources import candidates

Kind = Literal["system", "user", "launchd"]
UNIT_NAME = "genre-daemon.service"
PLIST_NAME = "com.genre-daemon.plist"
LABEL = "com.genre-daemon"
ROOT_ENV = "GENRE_DAEMON_UNIT_ROOT"  # a DESTDIR-like prefix for every target path (tests, packaging)
TEMPLATES = {"system": "genre-daemon.service", "user": "genre-daemon-user.service", "launchd": PLIST_NAME}
# Trees that ProtectHome= hides or makes read-only.
HOME_TREES = (Path("/home"), Path("/root"), Path("/run/user"))


class UnitError(GenreDaemonError):
    """A unit cannot be rendered (a path it cannot express) or installed (would clobber an edit)."""


@dataclass(frozen=True)
class Folders:
    """What the service needs to reach: folders it writes, and paths it only reads."""

    writable: tuple[Path, ...]
    readable: tuple[Path, ...] = ()


@dataclass(frozen=True)
class Outcome:
    """What :func:`install` did: ``written``, ``replaced`` (old copy kept as ``backup``) or ``unchanged``."""

    action: Literal["written", "replaced", "unchanged"]
    path: Path
    backup: Path | None = None


# --- finding things ------------------------------------------------------------------------------


def find_executable() -> Path:
    """The installed ``genre-daemon`` script, absolute and resolved.

    The one beside the running interpreter wins (the same environment as this code), then
    ``$PATH``. Resolving turns a pipx/`~/.local/bin` symlink into the real script, whose shebang
    names the right interpreter.
    """
    beside = Path(sys.executable).with_name("genre-daemon")
    for candidate in (beside, shutil.which("genre-daemon")):
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return Path(os.path.realpath(candidate))
    raise UnitError(
        f"cannot find the genre-daemon executable (looked beside {sys.executable} and on $PATH); "
        "install the package (pip install genre-daemon) first"
    )


def template_dir() -> Path:
    """``service/`` of the checkout, else the copy inside the installed package (:mod:`genre_daemon.resources`)."""
    places = candidates("service")
    for c in places:
        if (c / TEMPLATES["system"]).is_file():
            return c
    raise UnitError("cannot find the service templates; looked in " + ", ".join(map(str, places)))


def read_template(kind: Kind, directory: Path | None = None) -> str:
    """The template text of ``kind`` (the plist as XML text too)."""
    return ((directory or template_dir()) / TEMPLATES[kind]).read_text(encoding="utf-8")


def folders_for(settings: Settings, exe: Path, config: Path) -> Folders:
    """The writable folders of ``settings`` and what else the daemon reads (config, code, model)."""
    writable = [settings.inbox, settings.library, settings.review_dir, settings.quarantine_dir,
                settings.state_dir]
    readable = [config, exe.parent.parent, Path(sys.prefix), Path(sys.base_prefix),
                *settings.retrain.labelled_dirs]
    if settings.model is not None:
        readable.append(settings.model)
    return Folders(writable=tuple(writable), readable=tuple(readable))


def settings_for(config: Path) -> tuple[Settings, str | None]:
    """The config's settings, or the documented defaults and a note saying why they were used."""
    try:
        return load_settings(config), None
    except ConfigError as exc:
        note = (f"could not read the config ({exc}); the unit uses the default folders, "
                "re-run `service install --force` after fixing it")
        return parse_settings({}, source="<defaults>"), note


# --- pure rendering -----------------------------------------------------------------------------


def _check_path(path: Path) -> str:
    text = os.fspath(path)
    if not os.path.isabs(text):
        raise UnitError(f"{text}: a unit needs an absolute path")
    if not text.isprintable():
        raise UnitError(f"{text!r}: a path with a newline or control character cannot go into a unit")
    return text


def unit_quote(path: Path, *, exec_line: bool = False, prefix: str = "") -> str:
    """``path`` as one word of a unit file: double-quoted, ``%`` (and ``$`` on ExecStart) escaped.

    Inside quotes systemd splits on nothing, so spaces and the ``:`` of BindPaths= need no escape.
    """
    text = _check_path(path).replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")
    if exec_line:
        text = text.replace("$", "$$")
    return f'"{prefix}{text}"'



def _outermost(paths: Iterable[Path]) -> list[Path]:
    """The paths without duplicates and without those inside another one, in order."""
    unique = list(dict.fromkeys(Path(os.path.normpath(p)) for p in paths))
    return [p for p in unique if not any(p != q and p.is_relative_to(q) for q in unique)]


def _under_home(path: Path) -> bool:
    return any(path == h or path.is_relative_to(h) for h in HOME_TREES)


def sandbox_rules(folders: Folders) -> tuple[str, list[str]]:
    """``ProtectHome=`` value and the path lines for the system unit.

    Writable folders outside the home trees get ``ReadWritePaths=-`` ("-": a missing one stays
    read-only and the daemon reports it, rather than the unit failing with 226/NAMESPACE).
    If any folder is under /home, /root or /run/user, homes become an empty tmpfs with exactly
    those folders bound in: ``BindPaths=`` without "-", so a missing one stops the start instead
    of the daemon writing music into a throw-away tmpfs; read-only needs (config, code, model)
    get ``BindReadOnlyPaths=-``.
    """
    writable = _outermost(folders.writable)
    readable = [p for p in _outermost(folders.readable)
                if not any(p == w or p.is_relative_to(w) for w in writable)]
    lines = [f"ReadWritePaths={unit_quote(p, prefix='-')}" for p in writable if not _under_home(p)]
    home_rw = [p for p in writable if _under_home(p)]
    home_ro = [p for p in readable if _under_home(p)]
    if not home_rw and not home_ro:
        return "yes", lines
    lines += [f"BindPaths={unit_quote(p)}" for p in home_rw]
    lines += [f"BindReadOnlyPaths={unit_quote(p, prefix='-')}" for p in home_ro]
    return "tmpfs", lines


def render_systemd(template: str, *, exe: Path, config: Path, folders: Folders | None = None) -> str:
    """A systemd unit from ``template``: ExecStart with ``exe`` and ``config``, the sandbox paths.

    ``folders`` is needed by the system template (``@PATH_RULES@``); the user template has none.
    """
    text = template.replace("@EXEC@", unit_quote(exe, exec_line=True))
    text = text.replace("@CONFIG@", unit_quote(config, exec_line=True))
    if "@PATH_RULES@" in text:
        if folders is None:
            raise UnitError("the system unit needs the folders the daemon writes")
        protect_home, lines = sandbox_rules(folders)
        text = text.replace("@PROTECT_HOME@", protect_home).replace("@PATH_RULES@", "\n".join(lines))
    return text


def _replace_line(text: str, old: str, new: list[str]) -> str:
    """``text`` with its line ``old`` replaced by ``new`` (UnitError if the template lacks it)."""
    lines = text.split("\n")
    if old not in lines:
        raise UnitError(f"the unit template has no line {old!r} to open for the review page")
    at = lines.index(old)
    return "\n".join(lines[:at] + new + lines[at + 1:])


def web_rules(text: str, web: WebSettings, kind: Kind) -> str:
    """The unit opened for the review page's listener (``web.enabled``), and for nothing else.

    System unit: its own network namespace would hide the listener, so ``PrivateNetwork=`` goes;
    ``RestrictAddressFamilies=`` gains the one IP family the address needs; ``IPAddressDeny=any``
    stays with ``IPAddressAllow=localhost`` for a loopback address (``any`` only with
    ``web.allow_remote``); ``SocketBindAllow=`` lets it bind that one TCP port and no other.
    User unit: the address families only (the other options need the system manager).
    With web off the unit is left exactly as it was.
    """
    if not web.enabled:
        return text
    host, port = split_listen(web.listen)
    families = ["AF_INET", "AF_INET6"] if host == "localhost" else (["AF_INET6"] if ":" in host else ["AF_INET"])
    note = f"# The review page (web.enabled) listens on {web.listen}: TCP on {'loopback only' if web.loopback else 'a reachable address'}."
    text = _replace_line(text, "RestrictAddressFamilies=AF_UNIX",
                         [note, "RestrictAddressFamilies=AF_UNIX " + " ".join(families)])
    if kind != "system":
        return text
    text = _replace_line(text, "PrivateNetwork=yes", ["PrivateNetwork=no"])
    allow = "localhost" if web.loopback else "any"
    text = _replace_line(text, "IPAddressDeny=any", ["IPAddressDeny=any", f"IPAddressAllow={allow}"])
    if port:
        text = _replace_line(text, "RestrictNamespaces=yes",
                             ["RestrictNamespaces=yes", f"SocketBindAllow=tcp:{port}", "SocketBindDeny=any"])
    return text


def _substitute(value: Any, values: dict[str, str]) -> Any:
    if isinstance(value, str):
        return values.get(value, value)
    if isinstance(value, list):
        return [_substitute(v, values) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, values) for k, v in value.items()}
    return value


def render_plist(template: str, *, exe: Path, config: Path, log: Path) -> str:
    """The LaunchAgent plist: the template parsed, placeholders replaced, written by plistlib
    (so any character in a path is escaped correctly)."""
    data = plistlib.loads(template.encode("utf-8"))
    values = {"@EXEC@": _check_path(exe), "@CONFIG@": _check_path(config), "@LOG@": _check_path(log)}
    return plistlib.dumps(_substitute(data, values), sort_keys=False).decode("utf-8")


def render(kind: Kind, *, exe: Path, config: Path, settings: Settings, home: Path,
           template: str | None = None) -> str:
    """The text of the ``kind`` unit for ``settings``; ``home`` places the launchd log."""
    template = read_template(kind) if template is None else template
    if kind == "launchd":
        return render_plist(template, exe=exe, config=config,
                            log=home / "Library" / "Logs" / "genre-daemon.log")
    text = render_systemd(template, exe=exe, config=config, folders=folders_for(settings, exe, config))
    return web_rules(text, settings.web, kind)


def target_path(kind: Kind, *, home: Path, root: Path | None = None) -> Path:
    """Where systemd or launchd looks for the unit; ``root`` prefixes it (like DESTDIR)."""
    path = {
        "system": Path("/etc/systemd/system") / UNIT_NAME,
        "user": home / ".config" / "systemd" / "user" / UNIT_NAME,
        "launchd": home / "Library" / "LaunchAgents" / PLIST_NAME,
    }[kind]
    return path if root is None else root / path.relative_to("/")


def enable_command(kind: Kind, path: Path) -> str:
    """The shell command that loads and starts the installed unit."""
    if kind == "system":
        return "systemctl daemon-reload && systemctl enable --now genre-daemon"
    if kind == "user":
        return "systemctl --user daemon-reload && systemctl --user enable --now genre-daemon"
    return f'launchctl bootstrap gui/$(id -u) "{path}"'


# --- the one side effect ------------------------------------------------------------------------


def install(text: str, path: Path, *, force: bool = False, show: str = "") -> Outcome:
    """Write ``text`` to ``path``, atomically; an identical file is left alone.

    A different file (the user edited it) is refused with :class:`UnitError` unless ``force``;
    then the old one is kept beside it as ``<name>.bak``. ``show`` is the command that prints the
    new text, for the refusal message's diff hint.
    """
    old: str | None = None
    if os.path.lexists(path):
        try:
            old = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            old = f"<unreadable: {exc}>"
    if old == text:
        return Outcome("unchanged", path)
    backup: Path | None = None
    if old is not None:
        if not force:
            hint = f"see the difference with: {show} | diff -u {path} -\n  " if show else ""
            raise UnitError(
                f"{path}: exists and differs from the unit that would be written (edited by hand?); "
                f"not replaced.\n  {hint}replace it (the old one is kept as .bak) with --force"
            )
        backup = path.with_name(path.name + ".bak")
        shutil.copyfile(path, backup, follow_symlinks=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "x", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)  # replaces a symlink itself, never the file it points to
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)
    return Outcome("replaced" if backup else "written", path, backup)


# --- the command --------------------------------------------------------------------------------


def add_service_parser(sub: Any, config_help: str = "config file") -> None:
    """Register ``service install`` on the top-level sub-parsers of the ``genre-daemon`` command."""
    p = sub.add_parser("service", help="install the daemon as a systemd service or a launchd agent")
    actions = p.add_subparsers(dest="service_command", required=True, metavar="ACTION")
    q = actions.add_parser("install", help="render the unit with absolute paths and write it where "
                                           "systemd or launchd looks")
    which = q.add_mutually_exclusive_group(required=True)
    which.add_argument("--systemd", action="store_true", help="a systemd unit (system-wide unless --user)")
    which.add_argument("--launchd", action="store_true", help="a launchd LaunchAgent (macOS)")
    q.add_argument("--user", action="store_true", help="with --systemd: a unit for your user manager")
    q.add_argument("--config", type=Path, help=config_help)
    q.add_argument("--print", action="store_true", help="only print the unit; write nothing")
    q.add_argument("--force", action="store_true", help="replace an existing unit that differs")
    q.set_defaults(func=cmd_service_install)


def cmd_service_install(args: argparse.Namespace, out: TextIO, err: TextIO | None = None) -> int:
    """``genre-daemon service install``: print or install the unit; 1 if an edited unit is kept."""
    err = sys.stderr if err is None else err
    if args.user and not args.systemd:
        raise UnitError("--user goes with --systemd (a launchd agent is always per user)")
    kind: Kind = "launchd" if args.launchd else ("user" if args.user else "system")
    config = Path(os.path.abspath(os.path.expanduser(args.config or default_config_path())))
    exe = find_executable()
    settings, note = settings_for(config)
    if note:
        print(f"genre-daemon: warning: {note}", file=err)
    home = Path.home()
    text = render(kind, exe=exe, config=config, settings=settings, home=home)
    if args.print:
        out.write(text)
        return 0
    root_env = os.environ.get(ROOT_ENV)
    path = target_path(kind, home=home, root=Path(root_env) if root_env else None)
    flags = {"system": "--systemd", "user": "--systemd --user", "launchd": "--launchd"}[kind]
    show = f"genre-daemon service install {flags} --config {config} --print"
    try:
        outcome = install(text, path, force=args.force, show=show)
    except UnitError as exc:
        print(f"genre-daemon: {exc}", file=err)
        return 1
    except PermissionError as exc:
        raise UnitError(f"{path}: cannot write ({exc.strerror}); "
                        + ("run it as root (sudo)" if kind == "system" else "check the folder's owner")) from None
    said = {"written": "wrote", "replaced": "replaced", "unchanged": "already up to date:"}[outcome.action]
    print(f"{said} {outcome.path}" + (f" (the old one is {outcome.backup})" if outcome.backup else ""), file=out)
    if kind == "system":
        print("create the account first if needed: useradd --system --user-group --home-dir "
              "/var/lib/genre-daemon --shell /usr/sbin/nologin genre-daemon", file=out)
    print(f"enable and start it with:\n  {enable_command(kind, outcome.path)}", file=out)
    return 0



__all__: Sequence[str] = (
    "Folders", "Outcome", "UnitError", "add_service_parser", "cmd_service_install", "enable_command",
    "find_executable", "folders_for", "install", "read_template", "render", "render_plist",
    "render_systemd", "sandbox_rules", "settings_for", "target_path", "template_dir", "unit_quote", "web_rules",
)
