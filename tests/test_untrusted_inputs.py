"""State and saved plans are untrusted input (issue 11, finding 2; and 9a).

State comes from a CI cache and plans travel between jobs as artifacts. Each test plants
what a hostile or damaged cache or artifact could hold and checks, through the real command
line with ``--emulator``, that casereport refuses it on one line naming the file, the
address and the bad name, with the state, the site and every file outside them untouched.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from casereport.definitions.expand import fingerprint
from cli_workspace import EXAMPLE_REPORTS, example_workspace, ok, run

STATE = Path(".casereport/state.json")
FIX = "run `casereport plan --out` again"
# The first apply leaves no backup: the hint is the one without.
RESTORE = "; move the file away to start afresh (the next apply re-fetches everything)"


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The example reports in ``tmp_path/ws`` (the current directory); ``tmp_path/outside``
    holds a file that must never change."""
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "victim.html").write_text("precious\n")
    return example_workspace(tmp_path / "ws", monkeypatch)


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under the workspace's parent (so outside files too), with its bytes."""
    return {
        str(path.relative_to(root.parent)): path.read_bytes()
        for path in sorted(root.parent.rglob("*"))
        if path.is_file() and not path.is_symlink()
    }


def refused(args: tuple[str, ...], root: Path) -> str:
    """Run a command that must fail on one line and change no file; return that line."""
    before = snapshot(root)
    result = run(*args)
    assert result.exit_code == 1, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert snapshot(root) == before
    return lines[0]


def outside(root: Path) -> Path:
    return root.parent / "outside" / "victim.html"


def edit_state(change: Any) -> None:
    raw = json.loads(STATE.read_text())
    change(raw)
    STATE.write_text(json.dumps(raw))


def remove_report(name: str) -> None:
    Path(f"reports/{name}.yaml").unlink()


# -- output names in state ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        ("../../outside/victim.html", "'../../outside/victim.html' is not a page of report"),
        ("/etc/passwd", "'/etc/passwd' is not a page of report"),
        ("sub/security-cases.html", "'sub/security-cases.html' is not a page of report"),
        ("support-backlog.html", "'support-backlog.html' is not a page of report"),
        ("security-cases.exe", "'security-cases.exe' is not a page of report"),
    ],
    ids=["parent", "absolute", "separator", "another-report", "unknown-suffix"],
)
def test_a_state_naming_a_page_outside_the_site_is_refused(
    workspace: Path, bad: str, problem: str
) -> None:
    ok("apply", "--emulator", "--auto-approve")
    remove_report("security-cases")  # the next apply would remove its recorded pages

    def plant(raw: dict[str, Any]) -> None:
        raw["reports"]["security-cases"]["outputs"] = {bad: "0" * 64}

    edit_state(plant)
    line = refused(("apply", "--emulator", "--auto-approve"), workspace)
    assert line == (
        f"Error: .casereport/state.json: reports['security-cases'].outputs: {problem} "
        f"security-cases (security-cases + one of .csv, .html, .json, .md, .pdf){RESTORE}"
    )
    assert outside(workspace).read_text() == "precious\n"
    # Every command that reads the state refuses it the same way.
    assert refused(("render",), workspace) == line
    assert refused(("plan", "--emulator"), workspace) == line


def test_a_state_with_a_report_name_that_is_a_path_is_refused(workspace: Path) -> None:
    ok("apply", "--emulator", "--auto-approve")

    def plant(raw: dict[str, Any]) -> None:
        raw["reports"]["../outside/victim"] = {
            "definition_hash": "",
            "template_hash": "",
            "data_hash": "",
            "outputs": {"../outside/victim.html": "0" * 64},
        }

    edit_state(plant)
    line = refused(("apply", "--emulator", "--auto-approve"), workspace)
    assert line == (
        "Error: .casereport/state.json: reports['../outside/victim']: '../outside/victim' is "
        f"not a valid report name{RESTORE}"
    )


def test_a_state_with_a_bad_index_name_is_refused(workspace: Path) -> None:
    ok("apply", "--emulator", "--auto-approve")

    def plant(raw: dict[str, Any]) -> None:
        raw["site"]["outputs"]["../outside/victim.html"] = "0" * 64

    edit_state(plant)
    line = refused(("render",), workspace)
    assert line == (
        "Error: .casereport/state.json: site.outputs: '../outside/victim.html' is not a site "
        f"index file (index.html, index.md){RESTORE}"
    )


# -- saved plans ---------------------------------------------------------------------------


def _saved_plan_deleting_a_report() -> dict[str, Any]:
    ok("apply", "--emulator", "--auto-approve")
    remove_report("security-cases")
    ok("plan", "--emulator", "--out", "plan.json")
    return dict(json.loads(Path("plan.json").read_text()))


def _save(plan: dict[str, Any]) -> None:
    Path("plan.json").write_text(json.dumps(plan))


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        (
            "../../outside/victim.html",
            "'../../outside/victim.html' is not a page of report security-cases",
        ),
        ("support-backlog.html", "'support-backlog.html' is not a page of report security-cases"),
    ],
    ids=["outside", "another-report"],
)
def test_a_saved_plan_deleting_a_file_that_is_not_the_reports_page_is_refused(
    workspace: Path, bad: str, problem: str
) -> None:
    plan = _saved_plan_deleting_a_report()
    (change,) = [r for r in plan["reports"] if r["actions"] == ["delete"]]
    change["outputs"] = [bad]
    _save(plan)
    line = refused(("apply", "plan.json"), workspace)
    assert line == (
        "Error: plan.json: malformed plan (report security-cases outputs: "
        f"{problem} (security-cases + one of .csv, .html, .json, .md, .pdf)); make a new one"
    )
    assert outside(workspace).read_text() == "precious\n"
    assert Path("site/support-backlog.html").exists()


def test_a_saved_plan_deleting_a_page_the_state_does_not_record_is_refused(
    workspace: Path,
) -> None:
    plan = _saved_plan_deleting_a_report()
    Path("site/security-cases.md").write_text("mine, not casereport's\n")
    (change,) = [r for r in plan["reports"] if r["actions"] == ["delete"]]
    change["outputs"] = ["security-cases.html", "security-cases.md"]
    _save(plan)
    line = refused(("apply", "plan.json"), workspace)
    assert line == (
        "Error: Saved plan plan.json: report security-cases: deletes pages the state does not "
        "record for a removed report (security-cases.html, security-cases.md); " + FIX
    )


def test_a_saved_plan_deleting_a_defined_report_is_refused(workspace: Path) -> None:
    plan = _saved_plan_deleting_a_report()
    Path("reports/security-cases.yaml").write_bytes(
        (EXAMPLE_REPORTS / "security-cases.yaml").read_bytes()
    )
    ok("apply", "--emulator", "--auto-approve")  # the report is back, rendered
    plan = json.loads(Path("plan.json").read_text())
    raw = json.loads(STATE.read_text())
    plan["state"] = {"lineage": raw["lineage"], "serial": raw["serial"]}
    for report in plan["reports"]:
        if report["name"] == "security-cases":
            report["actions"] = ["delete"]
    ok("plan", "--emulator", "--out", "fresh.json")
    plan["inputs_hash"] = json.loads(Path("fresh.json").read_text())["inputs_hash"]
    _save(plan)
    line = refused(("apply", "plan.json"), workspace)
    assert line.startswith("Error: Saved plan plan.json: report security-cases: deletes pages")


def _real_plan() -> dict[str, Any]:
    ok("plan", "--emulator", "--out", "plan.json")
    return dict(json.loads(Path("plan.json").read_text()))


def test_a_saved_plan_with_a_swapped_query_and_its_fingerprint_kept_is_refused(
    workspace: Path,
) -> None:
    plan = _real_plan()
    change = plan["aggregations"][0]
    change["request"]["query_filter"] = "status:open OR *"
    _save(plan)
    line = refused(("apply", "plan.json"), workspace)
    assert line == (
        f"Error: plan.json: malformed plan ({change['address']}: the request does not match "
        f"its fingerprint {change['fingerprint'][:12]}); make a new one"
    )
    assert not STATE.exists()


def test_a_saved_plan_with_an_extra_request_field_is_refused(workspace: Path) -> None:
    plan = _real_plan()
    change = plan["aggregations"][0]
    change["request"]["page"] = {"cursor": "x"}
    _save(plan)
    line = refused(("apply", "plan.json"), workspace)
    assert "the request does not match its fingerprint" in line


def test_a_saved_plan_with_a_swapped_query_and_a_matching_fingerprint_is_refused(
    workspace: Path,
) -> None:
    """The fingerprint recomputed too: the request is not the defined one."""
    plan = _real_plan()
    change = plan["aggregations"][0]
    request = change["request"]
    request["query_filter"] = "status:open OR *"
    change["fingerprint"] = fingerprint(
        request["query_filter"], request["groups"], request["limit"]
    )
    _save(plan)
    line = refused(("apply", "plan.json"), workspace)
    assert line == (
        f"Error: Saved plan plan.json: {change['address']} would fetch another request than "
        f"the one defined; {FIX}"
    )


def test_a_saved_plan_fetching_an_undefined_address_is_refused(workspace: Path) -> None:
    plan = _real_plan()
    extra = dict(plan["aggregations"][0], address="support-backlog.invented")
    plan["aggregations"].append(extra)
    _save(plan)
    line = refused(("apply", "plan.json"), workspace)
    assert line == (
        "Error: Saved plan plan.json: support-backlog.invented is not an aggregation of the "
        f"definitions; {FIX}"
    )


def test_a_saved_plan_rendering_an_undefined_report_is_refused(workspace: Path) -> None:
    plan = _real_plan()
    plan["reports"].append(dict(plan["reports"][0], name="invented", outputs=["invented.html"]))
    _save(plan)
    line = refused(("apply", "plan.json"), workspace)
    assert line == f"Error: Saved plan plan.json: report invented is not defined; {FIX}"


def test_a_saved_plan_whose_index_writes_another_file_is_refused(workspace: Path) -> None:
    plan = _real_plan()
    plan["index"]["outputs"] = ["../outside/victim.html"]
    _save(plan)
    line = refused(("apply", "plan.json"), workspace)
    assert line == (
        "Error: plan.json: malformed plan (index outputs: '../outside/victim.html' is not a "
        "site index file (index.html, index.md)); make a new one"
    )


# -- temporary files -----------------------------------------------------------------------


def test_only_temporary_files_named_as_casereport_names_them_are_removed(workspace: Path) -> None:
    ok("apply", "--emulator", "--auto-approve")
    site, state_dir = Path("site"), Path(".casereport")
    # A killed run's leftovers: exactly as the writers name them.
    (site / ".index.html.k3x9_q2z.tmp").write_text("partial")
    (site / ".writing-p0s8d7f6.tmp").mkdir()
    (site / ".writing-p0s8d7f6.tmp" / "support-backlog.md").write_text("partial")
    (state_dir / ".state.json.a1b2c3d4.tmp").write_text("partial")
    # Other people's files that merely look temporary.
    theirs = [
        site / ".notes.tmp",
        site / ".draft.txt.abcdefgh.tmp",  # not a site file name: .txt is no page suffix
        site / ".index.html.tmp",
        site / ".writing-mine.tmp" / "support-backlog.md",
        site / ".writing-q1w2e3r4.tmp" / "notes.txt",  # a folder holding something else
        state_dir / ".state.json.mine.tmp",
        state_dir / ".other.json.a1b2c3d4.tmp",
    ]
    for path in theirs:
        path.parent.mkdir(exist_ok=True)
        path.write_text("keep me")
    # A link named as a leftover is not followed (and not removed: it is not ours).
    link = site / ".support-backlog.html.zzzzzzzz.tmp"
    link.symlink_to(outside(workspace))

    ok("apply", "--emulator", "--auto-approve", "--refresh")

    assert not (site / ".index.html.k3x9_q2z.tmp").exists()
    assert not (site / ".writing-p0s8d7f6.tmp").exists()
    assert not (state_dir / ".state.json.a1b2c3d4.tmp").exists()
    for path in theirs:
        assert path.read_text() == "keep me", path
    assert link.is_symlink()
    assert outside(workspace).read_text() == "precious\n"


# -- files the state does not record --------------------------------------------------------


def test_overwriting_a_site_file_the_state_does_not_record_says_so(workspace: Path) -> None:
    Path("site").mkdir()
    Path("site/index.html").write_text("<p>my own page</p>\n")
    result = ok("apply", "--emulator", "--auto-approve")
    assert (
        "site/index.html is not recorded in state (not written by casereport, or by an "
        "interrupted run); overwriting it\n" in result.stderr
    )
    assert "site/index.md" not in result.stderr  # it did not exist: nothing to say
    assert "my own page" not in Path("site/index.html").read_text()

    # Recorded now: a later apply or render overwrites it silently.
    Path("site/support-backlog.html").write_text("edited by hand\n")
    assert ok("apply", "--emulator", "--auto-approve").stderr == ""
    Path("site/other-notes.md").write_text("not a page of a defined report\n")
    assert ok("render").stderr == ""
    assert Path("site/other-notes.md").read_text() == "not a page of a defined report\n"


def test_render_names_the_unrecorded_files_it_overwrites(workspace: Path) -> None:
    ok("apply", "--emulator", "--auto-approve")

    def forget_index(raw: dict[str, Any]) -> None:
        raw["site"]["outputs"] = {}

    edit_state(forget_index)
    result = ok("render")
    assert result.stderr == (
        "site/index.html is not recorded in state (not written by casereport, or by an "
        "interrupted run); overwriting it\n"
        "site/index.md is not recorded in state (not written by casereport, or by an "
        "interrupted run); overwriting it\n"
    )


# -- the site folder ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("site_dir", "what", "path"),
    [
        (".", "the workspace", "."),
        ("..", "the workspace", "."),
        (".casereport", "the state", ".casereport"),
    ],
    ids=["workspace", "parent", "state-folder"],
)
@pytest.mark.parametrize("command", ["apply", "render"])
def test_a_site_dir_holding_the_workspace_or_the_state_is_refused(
    workspace: Path, site_dir: str, what: str, path: str, command: str
) -> None:
    ok("apply", "--emulator", "--auto-approve")
    args = ("apply", "--emulator", "--auto-approve") if command == "apply" else ("render",)
    line = refused((*args, "--site-dir", site_dir), workspace)
    assert line == (
        f"Error: site_dir {site_dir}: contains {what} ({path}); casereport writes and removes "
        "files there, so give the site a folder of its own (e.g. site/)"
    )


def test_a_site_dir_set_in_the_settings_to_the_workspace_is_refused(workspace: Path) -> None:
    Path("casereport.toml").write_text('site_dir = "."\n')
    line = refused(("apply", "--emulator", "--auto-approve"), workspace)
    assert line.startswith("Error: site_dir .: contains the workspace (.); ")


# -- 9a: state rm of a removed report --------------------------------------------------------


@pytest.mark.parametrize("command", ["apply", "render"])
def test_state_rm_of_a_removed_report_removes_its_pages_and_index_entry_next_time(
    workspace: Path, command: str
) -> None:
    ok("apply", "--emulator", "--auto-approve")
    assert "security-cases" in Path("site/index.md").read_text()
    remove_report("security-cases")
    ok("state", "rm", "security-cases")
    assert Path("site/security-cases.html").exists()  # state rm itself touches no page

    if command == "apply":
        plan = ok("plan", "--emulator")
        assert "security-cases" in plan.stdout
        assert plan.stdout.rstrip().endswith("1 to delete.")
        ok("apply", "--emulator", "--auto-approve")
    else:
        ok("render")

    assert not Path("site/security-cases.html").exists()
    assert "security-cases" not in Path("site/index.md").read_text()
    assert "security-cases" not in Path("site/index.html").read_text()
    assert "security-cases" not in STATE.read_text()
    assert ok("plan", "--emulator").stdout.rstrip().endswith("No changes. Reports are up to date.")


def test_render_removes_the_pages_of_a_report_removed_from_the_definitions(
    workspace: Path,
) -> None:
    # No `state rm`: the report is still recorded, with its results; render removes its
    # pages and index entry, and leaves the results for the next apply to delete.
    ok("apply", "--emulator", "--auto-approve")
    remove_report("security-cases")
    ok("render")

    assert not list(Path("site").glob("security-cases.*"))
    assert "security-cases" not in Path("site/index.md").read_text()
    assert Path("site/support-backlog.html").exists()
    plan = ok("plan", "--emulator").stdout
    assert "security-cases" in plan and "0 reports to render" in plan


def test_state_rm_of_a_defined_report_renders_it_again_without_a_notice(
    workspace: Path,
) -> None:
    ok("apply", "--emulator", "--auto-approve")
    ok("state", "rm", "security-cases")
    result = ok("apply", "--emulator", "--auto-approve")
    assert result.stderr == ""
    assert Path("site/security-cases.html").exists()
    assert "security-cases" in Path("site/index.md").read_text()
    assert ok("plan", "--emulator").stdout.rstrip().endswith("No changes. Reports are up to date.")
