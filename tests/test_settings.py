"""Workspace settings (casereport.toml), durations and --var parsing."""

from __future__ import annotations

from pathlib import Path

import pytest

from casereport.errors import ConfigError
from casereport.settings import (
    DEFAULT_HISTORY,
    DEFAULT_REFRESH,
    MAX_HISTORY_RUNS,
    Refresh,
    Retention,
    Settings,
    load_settings,
    parse_duration,
    parse_refresh,
    parse_var_assignments,
    read_settings,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("30m", 1800),
        ("6h", 21600),
        ("1d", 86400),
        ("2w", 1209600),
        ("1h30m", 5400),
        ("90m", 5400),
        ("always", 0),
    ],
)
def test_durations(text: str, seconds: int) -> None:
    refresh = parse_refresh(text)
    assert refresh == Refresh(seconds, text)
    assert refresh.always == (text == "always")


@pytest.mark.parametrize("text", ["", "6", "h", "6hours", "1.5h", "-1h", "6 h", "6H", "Always"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_refresh(text)
    assert str(caught.value) == (
        f'invalid duration "{text}": use a whole number and a unit s, m, h, d or w '
        '(e.g. 30m, 6h, 1d), or "always"'
    )


def test_zero_duration_is_refused() -> None:
    with pytest.raises(ValueError, match='it must be longer than 0 \\(or "always"\\)'):
        parse_refresh("0h")


def test_staleness() -> None:
    assert Refresh(3600, "1h") == DEFAULT_REFRESH
    assert not DEFAULT_REFRESH.is_stale(3599)
    assert DEFAULT_REFRESH.is_stale(3600)
    assert parse_refresh("always").is_stale(0)


def test_no_settings_file_gives_defaults(tmp_path: Path) -> None:
    settings, problems = read_settings(tmp_path)
    assert problems == ()
    assert settings == Settings(
        root=tmp_path,
        reports_dir=tmp_path / "reports",
        templates_dir=tmp_path / "templates",
        site_dir=tmp_path / "site",
        state_path=tmp_path / ".casereport/state.json",
    )
    assert settings.parallelism == 16 and settings.refresh == DEFAULT_REFRESH
    assert settings.vars == {} and settings.source is None


def test_every_key(tmp_path: Path) -> None:
    (tmp_path / "casereport.toml").write_text(
        """\
reports_dir = "defs"
templates_dir = "tpl"
site_dir = "public"
state_path = "state/casereport.json"
refresh = "30m"
parallelism = 8
timeout = 2.5
max_rate_limit_wait = 600

[vars]
service = "case-api"
threshold = 5
strict = true
"""
    )
    settings = load_settings(tmp_path)
    assert settings.reports_dir == tmp_path / "defs"
    assert settings.templates_dir == tmp_path / "tpl"
    assert settings.site_dir == tmp_path / "public"
    assert settings.state_path == tmp_path / "state/casereport.json"
    assert settings.refresh == Refresh(1800, "30m")
    assert settings.parallelism == 8
    assert (settings.timeout, settings.max_rate_limit_wait) == (2.5, 600.0)
    assert settings.vars == {"service": "case-api", "threshold": "5", "strict": "true"}
    assert settings.source == tmp_path / "casereport.toml"


def test_client_defaults_bound_every_wait(tmp_path: Path) -> None:
    settings = load_settings(tmp_path)
    assert (settings.timeout, settings.max_rate_limit_wait) == (30.0, 120.0)
    assert settings.with_overrides(timeout=0.5, max_rate_limit_wait=0).timeout == 0.5


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            "timeout = 0",
            '"timeout" must be a number of seconds, more than 0 (e.g. timeout = 30), got 0',
        ),
        (
            "timeout = -1.5",
            '"timeout" must be a number of seconds, more than 0 (e.g. timeout = 30), got -1.5',
        ),
        (
            "timeout = nan",
            '"timeout" must be a number of seconds, more than 0 (e.g. timeout = 30), got nan',
        ),
        (
            'timeout = "30s"',
            "\"timeout\" must be a number of seconds, more than 0 (e.g. timeout = 30), got '30s'",
        ),
        (
            "max_rate_limit_wait = inf",
            '"max_rate_limit_wait" must be a number of seconds, 0 or '
            "more (e.g. max_rate_limit_wait = 30), got inf",
        ),
        (
            "max_rate_limit_wait = true",
            '"max_rate_limit_wait" must be a number of seconds, 0 or '
            "more (e.g. max_rate_limit_wait = 30), got True",
        ),
    ],
)
def test_client_waits_are_checked(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "casereport.toml"
    path.write_text(f"# client\n{line}\n")
    settings, problems = read_settings(tmp_path)
    assert [str(p) for p in problems] == [f"{path}:2:1: error: {message}"]
    assert (settings.timeout, settings.max_rate_limit_wait) == (30.0, 120.0)


def test_a_rate_limit_cap_of_zero_means_never_wait(tmp_path: Path) -> None:
    (tmp_path / "casereport.toml").write_text("max_rate_limit_wait = 0\n")
    assert load_settings(tmp_path).max_rate_limit_wait == 0.0


def test_command_line_overrides(tmp_path: Path) -> None:
    (tmp_path / "casereport.toml").write_text('reports_dir = "defs"\nparallelism = 2\n')
    settings = load_settings(tmp_path).with_overrides(
        reports_dir=Path("elsewhere"), parallelism=None, refresh=Refresh(60, "1m")
    )
    assert settings.reports_dir == Path("elsewhere")
    assert settings.parallelism == 2
    assert settings.refresh.text == "1m"


def test_every_problem_is_collected_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "casereport.toml"
    path.write_text(
        """\
# settings
report_dir = "defs"
refresh = "6hours"
parallelism = 0
site_dir = 3

[vars]
ok = "x"
"bad-name" = "y"
list = ["a"]
"""
    )
    settings, problems = read_settings(tmp_path)
    assert [str(p) for p in problems] == [
        f'{path}:2:1: error: unknown setting "report_dir" (did you mean "reports_dir"?)',
        f'{path}:3:1: error: refresh: invalid duration "6hours": use a whole number and a unit '
        's, m, h, d or w (e.g. 30m, 6h, 1d), or "always"',
        f'{path}:4:1: error: "parallelism" must be between 1 and 64, got 0',
        f'{path}:5:1: error: "site_dir" must be a non-empty string (a path)',
        f'{path}:9:1: error: invalid variable name "bad-name": names start with a letter or "_" '
        'and hold only letters, digits and "_"',
        f'{path}:10:1: error: variable "list" must be a string, number or boolean',
    ]
    # Keys with problems keep their defaults; good ones are used.
    assert settings.refresh == DEFAULT_REFRESH and settings.vars == {"ok": "x"}
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path)
    assert caught.value.message.splitlines() == [str(p) for p in problems]


def test_unknown_table_and_no_hint(tmp_path: Path) -> None:
    path = tmp_path / "casereport.toml"
    path.write_text('colour = "blue"\n\n[variables]\nx = "1"\n')
    _, problems = read_settings(tmp_path)
    assert [str(p) for p in problems] == [
        f'{path}:1:1: error: unknown setting "colour"',
        f'{path}:3:1: error: unknown setting "variables" (did you mean "vars"?)',
    ]


def test_toml_syntax_error_has_a_position(tmp_path: Path) -> None:
    path = tmp_path / "casereport.toml"
    path.write_text('refresh = "1h"\nparallelism = \n')
    _, problems = read_settings(tmp_path)
    assert [str(p) for p in problems] == [
        f"{path}:2:15: error: invalid TOML: Invalid value",
    ]


def test_var_assignments() -> None:
    assert parse_var_assignments(["a=1", "b=x=y", "a=2", "empty="]) == {
        "a": "2",
        "b": "x=y",
        "empty": "",
    }


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("service", 'invalid --var "service": use --var NAME=VALUE'),
        (
            "../x=1",
            'invalid --var name "../x": names start with a letter or "_" and hold only '
            'letters, digits and "_"',
        ),
        (
            "=1",
            'invalid --var name "": names start with a letter or "_" and hold only '
            'letters, digits and "_"',
        ),
        (
            "a.b=1",
            'invalid --var name "a.b": names start with a letter or "_" and hold only '
            'letters, digits and "_"',
        ),
    ],
)
def test_bad_var_assignments(item: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_var_assignments([item])
    assert caught.value.message == message


def test_attributes_and_strict(tmp_path: Path) -> None:
    (tmp_path / "casereport.toml").write_text(
        'attributes = ["region", "tier.name"]\nstrict = true\n'
    )
    settings = load_settings(tmp_path)
    assert settings.attributes == ("region", "tier.name")
    assert settings.strict is True
    assert (Settings().attributes, Settings().strict) == ((), False)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            'attributes = "region"',
            '"attributes" must be a list of case attribute names, e.g. ["region"]',
        ),
        (
            'attributes = ["has space"]',
            "\"attributes\" lists 'has space': a case attribute name is 1 to 100 letters, "
            'digits or _ . - (not starting with "-")',
        ),
        (
            "attributes = [1]",
            '"attributes" lists 1: a case attribute name is 1 to 100 letters, digits or _ . - '
            '(not starting with "-")',
        ),
        ('attributes = ["a", "a"]', '"attributes" lists "a" twice'),
        ('strict = "yes"', "\"strict\" must be true or false, got 'yes'"),
        ("atributes = []", 'unknown setting "atributes" (did you mean "attributes"?)'),
    ],
)
def test_attributes_and_strict_are_checked(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "casereport.toml"
    path.write_text(f"\n{line}\n")
    settings, problems = read_settings(tmp_path)
    assert [str(p) for p in problems] == [f"{path}:2:1: error: {message}"]
    assert (settings.attributes, settings.strict) == ((), False)


# -- history retention ----------------------------------------------------------------


def test_history_defaults_to_thirty_runs(tmp_path: Path) -> None:
    settings = load_settings(tmp_path)
    assert settings.history == DEFAULT_HISTORY == Retention(30, None, "30")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("history = 60", Retention(60, None, "60")),
        ("history = 1", Retention(1, None, "1")),
        (f"history = {MAX_HISTORY_RUNS}", Retention(MAX_HISTORY_RUNS, None, "1000")),
        ('history = "90d"', Retention(MAX_HISTORY_RUNS, 90 * 86400, "90d")),
        ('history = "12w"', Retention(MAX_HISTORY_RUNS, 12 * 7 * 86400, "12w")),
        ('history = "36h"', Retention(MAX_HISTORY_RUNS, 36 * 3600, "36h")),
    ],
)
def test_history_is_a_run_count_or_a_duration(
    tmp_path: Path, line: str, expected: Retention
) -> None:
    (tmp_path / "casereport.toml").write_text(f"{line}\n")
    assert load_settings(tmp_path).history == expected


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            "history = 0",
            '"history" must keep from 1 to 1,000 runs (or a duration, e.g. history = "90d"), got 0',
        ),
        (
            "history = 1001",
            '"history" must keep from 1 to 1,000 runs (or a duration, e.g. history = "90d"), '
            "got 1001",
        ),
        (
            'history = "90days"',
            '"history" duration "90days" is not valid: use a whole number and a unit s, m, h, d '
            'or w (e.g. history = "90d"), or a number of runs (history = 60)',
        ),
        (
            'history = "60"',
            '"history" duration "60" is not valid: use a whole number and a unit s, m, h, d '
            'or w (e.g. history = "90d"), or a number of runs (history = 60)',
        ),
        (
            'history = "0d"',
            '"history" duration "0d" is not valid: use a whole number and a unit s, m, h, d '
            'or w (e.g. history = "90d"), or a number of runs (history = 60)',
        ),
        (
            "history = true",
            '"history" must be a number of runs (e.g. history = 60) or a duration '
            '(e.g. history = "90d"), got True',
        ),
        (
            "history = 2.5",
            '"history" must be a number of runs (e.g. history = 60) or a duration '
            '(e.g. history = "90d"), got 2.5',
        ),
        ("histroy = 60", 'unknown setting "histroy" (did you mean "history"?)'),
    ],
)
def test_bad_history_is_one_line_at_its_place(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "casereport.toml"
    path.write_text(f'refresh = "1h"\n\n{line}\n')
    settings, problems = read_settings(tmp_path)
    assert [str(p) for p in problems] == [f"{path}:3:1: error: {message}"]
    assert settings.history == DEFAULT_HISTORY


def test_refresh_and_history_share_the_duration_parser() -> None:
    assert parse_duration("1h30m") == 5400
    assert parse_duration("90d") == 90 * 86400
    assert parse_duration("90days") is None
    assert parse_duration("") is None
