"""Config: real YAML files in tmp_path through ``load_settings``; HOME points at a temporary folder."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from genre_daemon.config import (
    CONFIG_ENV,
    DEFAULT_EXTENSIONS,
    NotifySettings,
    RetrainSettings,
    WebSettings,
    Settings,
    default_config_path,
    describe,
    load_settings,
    missing_folders,
    parse_settings,
)
from genre_daemon.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[1] / "config.example.yaml"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh HOME; no config path or music folder variable from the real environment."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    monkeypatch.delenv("XDG_MUSIC_DIR", raising=False)
    return home


def write_config(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def separate_folders(root: Path) -> str:
    """YAML for five unrelated folders under ``root``: a valid base to change one key of."""
    return "".join(f"{k}: {root / k}\n" for k in ("inbox", "library", "review_dir", "quarantine_dir", "state_dir"))


def config_error(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    return str(info.value)


# --- defaults -----------------------------------------------------------------------------------


def test_an_empty_mapping_gives_the_pinned_defaults(home: Path) -> None:
    s = parse_settings({})
    assert s.inbox == home / "Music" / "Inbox"
    assert s.library == home / "Music" / "Library"
    assert s.review_dir == home / "Music" / "Library" / "_review"
    assert s.quarantine_dir == home / "Music" / "Inbox" / ".quarantine"
    assert s.state_dir == home / ".local" / "share" / "genre-daemon"
    assert s.journal_path == s.state_dir / "journal.sqlite3"
    assert (s.model, s.extensions, s.min_confidence, s.settle_seconds) == (None, DEFAULT_EXTENSIONS, 0.4, 2.0)
    assert (s.rescan_interval, s.on_conflict, s.workers, s.polling) == (300.0, "rename", 1, False)
    assert s.retrain == RetrainSettings(True, 20, 3600.0, 10, ())
    assert s.source is None
    assert parse_settings(None) == s


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "---\n"])
def test_an_empty_file_is_all_defaults(home: Path, tmp_path: Path, text: str) -> None:
    cfg = write_config(tmp_path / "config.yaml", text)
    assert load_settings(cfg) == dataclasses.replace(parse_settings({}), source=cfg)


def test_without_any_config_file_the_defaults_are_used(home: Path) -> None:
    assert default_config_path() == home / ".config" / "genre-daemon" / "config.yaml"
    s = load_settings()
    assert s.source is None
    assert s.inbox == home / "Music" / "Inbox"


def test_the_default_config_file_is_read_when_present(home: Path) -> None:
    write_config(home / ".config" / "genre-daemon" / "config.yaml", "workers: 4\n")
    s = load_settings()
    assert s.workers == 4
    assert s.source == home / ".config" / "genre-daemon" / "config.yaml"


def test_genre_daemon_config_env_var_is_respected(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(home / ".config" / "genre-daemon" / "config.yaml", "workers: 4\n")
    cfg = write_config(tmp_path / "elsewhere" / "gd.yaml", "workers: 3\n")
    monkeypatch.setenv(CONFIG_ENV, str(cfg))
    assert default_config_path() == cfg
    s = load_settings()
    assert (s.workers, s.source) == (3, cfg)


def test_a_config_path_asked_for_must_exist(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "nope.yaml"
    monkeypatch.setenv(CONFIG_ENV, str(missing))
    with pytest.raises(ConfigError, match=re.escape(f"{missing}: no such config file")):
        load_settings()
    monkeypatch.delenv(CONFIG_ENV)
    with pytest.raises(ConfigError, match=re.escape(str(missing))):
        load_settings(missing)


# --- paths ----------------------------------------------------------------------------------


def test_tilde_and_environment_variables_are_expanded(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    music = tmp_path / "music"
    monkeypatch.setenv("XDG_MUSIC_DIR", str(music))
    cfg = write_config(tmp_path / "config.yaml", (
        "inbox: ${XDG_MUSIC_DIR}/In\n"
        "library: $HOME/Lib\n"
        "review_dir: ~/Lib/_review\n"
        "quarantine_dir: $XDG_MUSIC_DIR/In/.q\n"
        "state_dir: '~'\n"
        "model: ~/models/m1\n"
        "retrain:\n  labelled_dirs: [~/labelled, '${XDG_MUSIC_DIR}/labels']\n"
    ))
    s = load_settings(cfg)
    assert s.inbox == music / "In"
    assert s.library == home / "Lib"
    assert s.review_dir == home / "Lib" / "_review"
    assert s.quarantine_dir == music / "In" / ".q"
    assert s.state_dir == home
    assert s.model == home / "models" / "m1"
    assert s.retrain.labelled_dirs == (home / "labelled", music / "labels")


def test_a_bare_tilde_is_yaml_null_and_the_message_says_so(home: Path, tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "config.yaml", "inbox: ~\n")
    assert config_error(cfg) == f"{cfg}: inbox: expected a folder path, got null (a bare ~ is YAML for null: write '~')"


@pytest.mark.parametrize("value", ["$GD_UNSET_VAR/In", "${GD_UNSET_VAR}/In", "~/$GD_UNSET_VAR"])
def test_an_unset_variable_is_an_error_naming_it(home: Path, tmp_path: Path, value: str) -> None:
    cfg = write_config(tmp_path / "config.yaml", f"inbox: {value}\n")
    message = config_error(cfg)
    assert message.startswith(f"{cfg}: inbox: environment variable GD_UNSET_VAR is not set")
    assert repr(value) in message


@pytest.mark.parametrize("value", ["${UNCLOSED/In", "${not a name}/In"])
def test_a_malformed_variable_is_an_error(home: Path, tmp_path: Path, value: str) -> None:
    cfg = write_config(tmp_path / "config.yaml", f"inbox: '{value}'\n")
    assert config_error(cfg).startswith(f"{cfg}: inbox: ")


def test_expansion_uses_the_given_environment(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path / "h"), "M": str(tmp_path / "m")}
    s = parse_settings({"inbox": "$M/in", "library": "~/lib"}, environ=env)
    assert (s.inbox, s.library, s.state_dir) == (tmp_path / "m" / "in", tmp_path / "h" / "lib",
                                                 tmp_path / "h" / ".local" / "share" / "genre-daemon")


def test_relative_paths_are_relative_to_the_config_folder(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    cfg = write_config(tmp_path / "conf" / "config.yaml", (
        "inbox: in\nlibrary: ../lib\nreview_dir: ./review/\nquarantine_dir: q\nstate_dir: st\n"
        "model: models/m\nretrain:\n  labelled_dirs: [labels, labels/]\n"
    ))
    s = load_settings(Path("..") / "conf" / "config.yaml")
    conf = tmp_path / "conf"
    assert (s.inbox, s.library, s.review_dir) == (conf / "in", tmp_path / "lib", conf / "review")
    assert (s.quarantine_dir, s.state_dir, s.model) == (conf / "q", conf / "st", conf / "models" / "m")
    assert s.retrain.labelled_dirs == (conf / "labels",)  # normalised, then duplicates dropped
    assert s.source == cfg


def test_paths_are_normalised_but_symlinks_kept(home: Path, tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    cfg = write_config(tmp_path / "config.yaml", f"inbox: {tmp_path}/link//x/./y/../in/\n")
    assert load_settings(cfg).inbox == tmp_path / "link" / "x" / "in"


def test_odd_characters_in_paths_survive(home: Path, tmp_path: Path) -> None:
    name = "Müsik ünd spaces\nline two"
    s = parse_settings({"inbox": str(tmp_path / name)})
    assert s.inbox == tmp_path / name


# --- bad values -----------------------------------------------------------------------------

BAD_VALUES = [
    # (YAML, dotted key, the value as shown, a fragment of what is expected)
    ("min_confidence: 1.5", "min_confidence", "1.5", "a number from 0 to 1"),
    ("min_confidence: -0.1", "min_confidence", "-0.1", "a number from 0 to 1"),
    ("min_confidence: high", "min_confidence", "'high'", "a number from 0 to 1"),
    ("min_confidence: true", "min_confidence", "true", "a number"),
    ("settle_seconds: -1", "settle_seconds", "-1", "a number of seconds >= 0"),
    ("settle_seconds: '2'", "settle_seconds", "'2'", "remove the quotes"),
    ("settle_seconds: 1e3", "settle_seconds", "'1e3'", "write 1000"),
    ("settle_seconds: .nan", "settle_seconds", "nan", ">= 0"),
    ("rescan_interval: 0", "rescan_interval", "0", "a number of seconds > 0"),
    ("rescan_interval: .inf", "rescan_interval", "inf", "> 0"),
    ("rescan_interval: null", "rescan_interval", "null", "> 0"),
    ("workers: 0", "workers", "0", "a whole number from 1 to 32"),
    ("workers: 33", "workers", "33", "a whole number from 1 to 32"),
    ("workers: 2.5", "workers", "2.5", "a whole number"),
    ("workers: two", "workers", "'two'", "a whole number"),
    ("workers: false", "workers", "false", "a whole number"),
    ("on_conflict: clobber", "on_conflict", "'clobber'", "one of rename, skip, overwrite"),
    ("on_conflict: Rename", "on_conflict", "'Rename'", "one of rename, skip, overwrite"),
    ("polling: 'yes'", "polling", "'yes'", "true or false"),
    ("polling: 1", "polling", "1", "true or false"),
    ("extensions: []", "extensions", "[]", "a non-empty list"),
    ("extensions: mp3", "extensions", "'mp3'", "a non-empty list"),
    ("extensions: [mp3, '']", "extensions", "''", "letters and digits"),
    ("extensions: [mp3, 3]", "extensions", "3", "text"),
    ("extensions: [m/p3]", "extensions", "'m/p3'", "letters and digits"),
    ("extensions: [tar.gz]", "extensions", "'tar.gz'", "letters and digits"),
    ("inbox: 42", "inbox", "42", "a folder path"),
    ("inbox: ''", "inbox", "''", "a folder path"),
    ("inbox: null", "inbox", "null", "a folder path"),
    ("library: [a, b]", "library", "['a', 'b']", "a folder path"),
    ("model: 7", "model", "7", "a folder path"),
    ("retrain: 3", "retrain", "3", "a mapping of enabled, min_new_labels"),
    ("retrain: {enabled: 'no'}", "retrain.enabled", "'no'", "true or false"),
    ("retrain: {min_new_labels: 0}", "retrain.min_new_labels", "0", "a whole number >= 1"),
    ("retrain: {min_per_genre: ten}", "retrain.min_per_genre", "'ten'", "a whole number >= 1"),
    ("retrain: {min_interval: -5}", "retrain.min_interval", "-5", "a number of seconds >= 0"),
    ("retrain: {labelled_dirs: ~/x}", "retrain.labelled_dirs", "'~/x'", "a list of folder paths"),
    ("retrain: {labelled_dirs: [~/ok, 5]}", "retrain.labelled_dirs[1]", "5", "a folder path"),
]


@pytest.mark.parametrize(("text", "key", "shown", "expected"), BAD_VALUES, ids=[b[0] for b in BAD_VALUES])
def test_a_bad_value_names_file_key_value_and_what_is_expected(
    home: Path, tmp_path: Path, text: str, key: str, shown: str, expected: str
) -> None:
    cfg = write_config(tmp_path / "config.yaml", text + "\n")
    message = config_error(cfg)
    assert message.startswith(f"{cfg}: {key}: expected ")
    assert f"got {shown}" in message
    assert expected in message
    assert "\n" not in message  # one problem, one line


def test_the_message_reads_as_documented(home: Path, tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "config.yaml", "retrain:\n  min_per_genre: ten\n")
    assert config_error(cfg) == f"{cfg}: retrain.min_per_genre: expected a whole number >= 1, got 'ten'"


def test_every_problem_is_reported_at_once(home: Path, tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "config.yaml", "workers: 0\npolling: maybe\nsetle_seconds: 1\n")
    lines = config_error(cfg).splitlines()
    assert len(lines) == 3
    assert all(line.startswith(f"{cfg}: ") for line in lines)
    assert {line.split(": ")[1] for line in lines} == {"workers", "polling", "setle_seconds"}


@pytest.mark.parametrize(("text", "key", "hint"), [
    ("setle_seconds: 2", "setle_seconds", "did you mean settle_seconds?"),
    ("quarantine: /q", "quarantine", "did you mean quarantine_dir?"),
    ("retrain:\n  min_per_genr: 3", "retrain.min_per_genr", "did you mean retrain.min_per_genre?"),
    ("retrain:\n  labeled_dirs: []", "retrain.labeled_dirs", "did you mean retrain.labelled_dirs?"),
    ("colour: blue", "colour", "known keys: inbox, library,"),
    ("1: 2", "1", "unknown key"),
])
def test_an_unknown_key_is_refused_with_the_nearest_known_one(
    home: Path, tmp_path: Path, text: str, key: str, hint: str
) -> None:
    cfg = write_config(tmp_path / "config.yaml", text + "\n")
    message = config_error(cfg)
    assert message.startswith(f"{cfg}: {key}: unknown key")
    assert hint in message


def test_a_yaml_syntax_error_names_file_and_line(home: Path, tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "config.yaml", "workers: 2\ninbox: [unclosed\nlibrary: x\n")
    message = config_error(cfg)
    assert message.startswith(f"{cfg}: line ")
    assert "not valid YAML" in message
    assert "from line 2" in message  # where the unclosed list began


def test_python_tags_are_refused_not_executed(home: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    cfg = write_config(tmp_path / "config.yaml", f"inbox: !!python/object/apply:os.mkdir ['{marker}']\n")
    assert "not valid YAML" in config_error(cfg)
    assert not marker.exists()


def test_a_duplicate_key_is_refused_naming_file_key_and_both_lines(home: Path, tmp_path: Path) -> None:
    top = write_config(tmp_path / "top.yaml", separate_folders(tmp_path) + f"workers: 2\ninbox: {tmp_path / 'x'}\n")
    message = config_error(top)
    assert message.startswith(f"{top}: inbox: ")
    assert "line 1" in message and "line 7" in message
    nested = write_config(tmp_path / "nested.yaml", separate_folders(tmp_path) + (
        "retrain:\n  min_new_labels: 5\n  enabled: true\n  min_new_labels: 50\n"))
    message = config_error(nested)
    assert message.startswith(f"{nested}: retrain.min_new_labels: ")
    assert "line 7" in message and "line 9" in message
    # A merge key is not a duplicate: the explicit key overrides the merged one, as in YAML.
    merged = write_config(tmp_path / "merged.yaml", separate_folders(tmp_path) + (
        "retrain:\n  <<: {min_new_labels: 5, enabled: false}\n  min_new_labels: 7\n"))
    assert load_settings(merged).retrain == RetrainSettings(enabled=False, min_new_labels=7)


def check_config(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "genre_daemon.cli", "check-config", str(path)],
                          capture_output=True, text=True, timeout=60)


def test_check_config_refuses_a_duplicate_key(home: Path, tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "config.yaml", f"inbox: {tmp_path / 'a'}\ninbox: {tmp_path / 'b'}\n")
    out = check_config(cfg)
    assert out.returncode == 2 and "OK" not in out.stdout
    assert str(cfg) in out.stderr and "inbox" in out.stderr and "line 1" in out.stderr and "line 2" in out.stderr


def test_check_config_warns_about_a_folder_that_does_not_exist(home: Path, tmp_path: Path) -> None:
    for key in ("library", "review_dir", "quarantine_dir", "state_dir"):
        (tmp_path / key).mkdir()
    cfg = write_config(tmp_path / "config.yaml", separate_folders(tmp_path).replace("/inbox", "/inbxo"))
    out = check_config(cfg)
    assert out.returncode == 0, out.stderr
    warnings = [line for line in out.stderr.splitlines() if "does not exist" in line]
    assert len(warnings) == 1
    assert f"inbox {tmp_path / 'inbxo'} does not exist" in warnings[0] and "check the path" in warnings[0]
    assert not (tmp_path / "inbxo").exists()  # check-config creates nothing
    assert missing_folders(load_settings(cfg)) == [("inbox", tmp_path / "inbxo")]  # what the service logs too
    (tmp_path / "inbxo").mkdir()
    assert "does not exist" not in check_config(cfg).stderr


@pytest.mark.parametrize(("text", "kind"), [("- a\n- b\n", "list"), ("just text\n", "str"), ("42\n", "int")])
def test_the_top_level_must_be_a_mapping(home: Path, tmp_path: Path, text: str, kind: str) -> None:
    cfg = write_config(tmp_path / "config.yaml", text)
    message = config_error(cfg)
    assert message.startswith(f"{cfg}: expected a mapping of settings")
    assert f"got {kind}" in message


def test_unreadable_config_files_are_named(home: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "latin1.yaml"
    cfg.write_bytes(b"inbox: /M\xfcsik\n")
    assert config_error(cfg).startswith(f"{cfg}: not UTF-8 text")
    assert config_error(tmp_path).startswith(f"{tmp_path}: is a folder")


# --- accepted forms ----------------------------------------------------------------------------


def test_extensions_are_normalised(home: Path) -> None:
    s = parse_settings({"extensions": [".MP3", "Flac", "mp3", " ogg "]})
    assert s.extensions == ("mp3", "flac", "ogg")


def test_whole_numbers_are_accepted_for_seconds_and_bounds_are_inclusive(home: Path) -> None:
    s = parse_settings({"settle_seconds": 0, "min_confidence": 1, "workers": 32,
                        "retrain": {"min_interval": 0, "min_new_labels": 1}})
    assert (s.settle_seconds, s.min_confidence, s.workers, s.retrain.min_interval) == (0.0, 1.0, 32, 0.0)
    assert isinstance(s.settle_seconds, float) and isinstance(s.min_confidence, float)


@pytest.mark.parametrize("text", ["retrain:\n", "retrain: {}\n", "retrain:\n  labelled_dirs:\n"])
def test_an_empty_retrain_section_is_all_defaults(home: Path, tmp_path: Path, text: str) -> None:
    cfg = write_config(tmp_path / "config.yaml", text)
    assert load_settings(cfg).retrain == RetrainSettings()


def test_every_key_can_be_set(home: Path, tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "config.yaml", separate_folders(tmp_path) + (
        f"model: {tmp_path / 'm'}\nextensions: [opus]\nmin_confidence: 0.7\nsettle_seconds: 0.5\n"
        "rescan_interval: 60\non_conflict: skip\nworkers: 4\npolling: true\n"
        "retrain:\n  enabled: false\n  min_new_labels: 5\n  min_interval: 10\n  min_per_genre: 3\n"
        f"  labelled_dirs: [{tmp_path / 'labels'}]\n"
    ))
    s = load_settings(cfg)
    assert s == Settings(
        inbox=tmp_path / "inbox", library=tmp_path / "library", review_dir=tmp_path / "review_dir",
        quarantine_dir=tmp_path / "quarantine_dir", state_dir=tmp_path / "state_dir",
        model=tmp_path / "m", extensions=("opus",), min_confidence=0.7, settle_seconds=0.5,
        rescan_interval=60.0, on_conflict="skip", workers=4, polling=True,
        retrain=RetrainSettings(False, 5, 10.0, 3, (tmp_path / "labels",)), source=cfg,
    )


# --- folder roles -----------------------------------------------------------------------------

ROLE_CLASHES = [
    # (key to change, its new value under root, the other key named, phrase)
    ("library", "inbox", "inbox", "both are the folder"),
    ("review_dir", "quarantine_dir", "quarantine_dir", "both are the folder"),
    ("state_dir", "library", "library", "both are the folder"),
    ("library", "inbox/sorted", "inbox", "is inside inbox"),
    ("inbox", "library/new", "library", "is inside library"),
    ("state_dir", "inbox/.state", "inbox", "is inside inbox"),
    ("state_dir", "library/.state", "library", "is inside library"),
    ("review_dir", "inbox/review", "inbox", "is inside inbox"),
    ("quarantine_dir", "library/broken", "library", "is inside library"),
]


@pytest.mark.parametrize(("key", "value", "other", "phrase"), ROLE_CLASHES,
                         ids=[f"{c[0]}={c[1]}" for c in ROLE_CLASHES])
def test_folder_roles_that_clash_are_refused_naming_both(
    home: Path, tmp_path: Path, key: str, value: str, other: str, phrase: str
) -> None:
    root = tmp_path / "root"
    text = re.sub(rf"^{key}: .*$", f"{key}: {root / value}", separate_folders(root), flags=re.M)
    cfg = write_config(tmp_path / "config.yaml", text)
    message = config_error(cfg)
    assert message.startswith(f"{cfg}: ")
    assert key in message and other in message and phrase in message
    assert str(root / value) in message and str(root / other) in message
    assert "\n" not in message


def test_a_clash_does_not_hide_another(home: Path, tmp_path: Path) -> None:
    text = separate_folders(tmp_path).replace(f"review_dir: {tmp_path / 'review_dir'}", f"review_dir: {tmp_path / 'inbox'}")
    text = text.replace(f"library: {tmp_path / 'library'}", f"library: {tmp_path / 'inbox' / 'lib'}")
    lines = config_error(write_config(tmp_path / "config.yaml", text)).splitlines()
    assert len(lines) == 2
    assert "inbox and review_dir: both are the folder" in lines[0]
    assert f"library: {tmp_path / 'inbox' / 'lib'} is inside inbox" in lines[1]


def test_a_labelled_dir_inside_the_inbox_is_refused(home: Path, tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "config.yaml", separate_folders(tmp_path) + (
        f"retrain:\n  labelled_dirs: [{tmp_path / 'ok'}, {tmp_path / 'inbox' / 'labels'}]\n"
    ))
    message = config_error(cfg)
    assert message.startswith(f"{cfg}: retrain.labelled_dirs[1]: {tmp_path / 'inbox' / 'labels'} is inside inbox")


def test_review_inside_library_and_quarantine_inside_inbox_are_allowed(home: Path, tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "config.yaml", (
        f"inbox: {tmp_path / 'in'}\nlibrary: {tmp_path / 'lib'}\nstate_dir: {tmp_path / 'state'}\n"
        f"review_dir: {tmp_path / 'lib' / '_review'}\nquarantine_dir: {tmp_path / 'in' / '.q'}\n"
    ))
    s = load_settings(cfg)
    assert s.review_dir.parent == s.library and s.quarantine_dir.parent == s.inbox


def test_a_symlink_cannot_disguise_one_folder_as_two(home: Path, tmp_path: Path) -> None:
    (tmp_path / "inbox").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "inbox")
    text = separate_folders(tmp_path).replace(f"library: {tmp_path / 'library'}", f"library: {tmp_path / 'alias' / 'lib'}")
    cfg = write_config(tmp_path / "config.yaml", text)
    message = config_error(cfg)
    assert f"library: {tmp_path / 'alias' / 'lib'}, really {tmp_path / 'inbox' / 'lib'} is inside inbox" in message


def test_similar_names_are_not_nested(home: Path, tmp_path: Path) -> None:
    text = separate_folders(tmp_path).replace(f"library: {tmp_path / 'library'}", f"library: {tmp_path / 'inbox-sorted'}")
    cfg = write_config(tmp_path / "config.yaml", text)
    assert load_settings(cfg).library == tmp_path / "inbox-sorted"


# --- the example file and the summary ------------------------------------------------------------


def test_the_example_file_parses_to_the_defaults_and_names_every_key(home: Path) -> None:
    s = load_settings(EXAMPLE)
    assert s == dataclasses.replace(parse_settings({}), source=EXAMPLE)
    raw = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    assert set(raw) == {f.name for f in dataclasses.fields(Settings)} - {"source"}
    assert set(raw["retrain"]) == {f.name for f in dataclasses.fields(RetrainSettings)}
    assert set(raw["web"]) == {f.name for f in dataclasses.fields(WebSettings)}
    assert set(raw["notify"]) == {f.name for f in dataclasses.fields(NotifySettings)}


def test_the_example_file_documents_every_key_with_a_comment() -> None:
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    keys = [(i, m.group(1)) for i, line in enumerate(lines) if (m := re.match(r"\s*(\w+):", line))]
    assert len(keys) == 37
    for i, key in keys:
        assert lines[i - 1].lstrip().startswith("#"), f"{key} (line {i + 1}) has no comment above it"
        if key != "retrain":
            above = []
            j = i - 1
            while j >= 0 and lines[j].lstrip().startswith("#"):
                above.append(lines[j])
                j -= 1
            assert any("Default" in line for line in above), f"{key} does not state its default"


def test_describe_shows_every_value_and_reads_back_the_same(home: Path, tmp_path: Path) -> None:
    odd = tmp_path / "Müsik: in\nbox"
    cfg = write_config(tmp_path / "config.yaml", (
        f"inbox: '{odd}'\nlibrary: {tmp_path / 'lib'}\nreview_dir: {tmp_path / 'rev'}\n"
        f"quarantine_dir: {tmp_path / 'q'}\nstate_dir: {tmp_path / 'st'}\nmodel: {tmp_path / 'm'}\n"
        "extensions: [flac]\nmin_confidence: 0.55\nsettle_seconds: 1.5\nrescan_interval: 42\n"
        "on_conflict: overwrite\nworkers: 3\npolling: true\n"
        f"retrain:\n  enabled: false\n  min_new_labels: 7\n  min_interval: 99\n  min_per_genre: 4\n"
        f"  labelled_dirs: [{tmp_path / 'labels'}]\n"
    ).replace(f"'{odd}'", yaml.safe_dump(str(odd)).removesuffix("...\n").strip()))
    s = load_settings(cfg)
    assert s.inbox == odd
    text = describe(s)
    for needle in (str(cfg), str(s.journal_path), str(tmp_path / "labels"), "overwrite", "0.55", "42"):
        assert needle in text
    assert parse_settings(yaml.safe_load(text)) == dataclasses.replace(s, source=None)


def test_describe_of_the_defaults_says_so(home: Path) -> None:
    text = describe(parse_settings({}))
    assert "built-in defaults" in text
    assert "model: null" in text
    assert parse_settings(yaml.safe_load(text)) == parse_settings({})


def test_check_config_shows_where_the_path_template_puts_a_sample_file(home: Path, tmp_path: Path) -> None:
    template = "{genre}/{albumartist|artist|Unknown Artist}/{album|album_folder}/{track:02} {title|stem}"
    cfg = write_config(tmp_path / "config.yaml", separate_folders(tmp_path) + f"path_template: {json.dumps(template)}\n")
    out = check_config(cfg)
    assert out.returncode == 0, out.stderr
    assert "a loose file goes to  <library>/jazz/Miles Davis/Kind of Blue/01 So What.flac" in out.stdout
    assert "its album folder to   <library>/jazz/Miles Davis/Kind of Blue/" in out.stdout
    default = check_config(write_config(tmp_path / "default.yaml", separate_folders(tmp_path)))
    assert "<library>/jazz/01 So What.flac" in default.stdout  # null keeps the old layout
    assert "<library>/jazz/Kind of Blue (1959)/" in default.stdout


@pytest.mark.parametrize("bad, says", [
    ("{nope}/{filename}", "unknown field 'nope'"), ("/abs/{filename}", "relative to the library"),
    ("{genre}/../{filename}", "'..'"),
])
def test_a_bad_path_template_is_refused_naming_the_key(home: Path, tmp_path: Path, bad: str, says: str) -> None:
    cfg = write_config(tmp_path / "config.yaml", separate_folders(tmp_path) + f"path_template: {json.dumps(bad)}\n")
    with pytest.raises(ConfigError) as err:
        load_settings(cfg)
    assert "path_template" in str(err.value) and says in str(err.value)


@pytest.mark.parametrize("key, value, says", [
    ("albums", "per_album", "one of together, per_track"), ("duplicates", "delete", "one of keep, skip, quarantine"),
    ("write_tags", "sometimes", "true or false"),
])
def test_the_album_keys_are_checked(home: Path, tmp_path: Path, key: str, value: str, says: str) -> None:
    cfg = write_config(tmp_path / "config.yaml", separate_folders(tmp_path) + f"{key}: {value}\n")
    with pytest.raises(ConfigError) as err:
        load_settings(cfg)
    assert f"{key}: " in str(err.value) and says in str(err.value)


def test_genre_names_and_folder_mode_are_checked_naming_the_key(home: Path, tmp_path: Path) -> None:
    """Issue 22's keys: a name that is not one safe folder name and a mode that locks the owner
    out are refused naming the key; good values come back typed."""
    good = parse_settings({"genre_names": {"hiphop": "Hip-Hop", "disco": "Pop"}, "folder_mode": "0750",
                           "tag_mode": "fill", "tag_genres": 3})
    assert dict(good.genre_names) == {"hiphop": "Hip-Hop", "disco": "Pop"} and good.folder_mode == 0o750
    assert good.tag_mode == "fill" and good.tag_genres == 3
    for bad, words in (({"genre_names": {"jazz": "../up"}}, "genre_names"), ({"folder_mode": "0644"}, "folder_mode"),
                       ({"folder_mode": 755}, "folder_mode"), ({"tag_mode": "merge"}, "tag_mode"),
                       ({"tag_genres": 0}, "tag_genres")):
        with pytest.raises(ConfigError, match=words):
            parse_settings(bad)
