"""No symbolic link is followed for a write (issue 11, finding 3).

Real links point out of the workspace at a file or folder that must stay untouched; each
write path refuses on one line: the site folder, a page, the state folder and file, a
saved plan (``plan --out``), and the atomic writers themselves. (The lock file is another
finding's.)
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from casereport.errors import CaseReportError
from casereport.fsutil import AtomicFiles, atomic_write_text
from cli_workspace import example_workspace, run


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "victim").write_text("precious\n")
    return example_workspace(tmp_path / "ws", monkeypatch)


def outside(root: Path) -> Path:
    return root.parent / "outside"


def untouched(root: Path) -> None:
    assert sorted(p.name for p in outside(root).iterdir()) == ["victim"]
    assert (outside(root) / "victim").read_text() == "precious\n"


def one_line_error(*args: str) -> str:
    result = run(*args)
    assert result.exit_code == 1, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_a_site_dir_that_is_a_link_is_refused(workspace: Path) -> None:
    Path("site").symlink_to(outside(workspace), target_is_directory=True)
    line = one_line_error("apply", "--emulator", "--auto-approve")
    assert line == (
        "Error: site_dir site: is a symbolic link; casereport never writes through one: "
        "give the site a real folder (e.g. site/)"
    )
    untouched(workspace)
    assert not Path(".casereport/state.json").exists()
    assert one_line_error("render").startswith("Error: ")  # no state yet, or the link
    untouched(workspace)


@pytest.mark.parametrize("page", ["support-backlog.html", "index.md"])
def test_a_page_that_is_a_link_is_not_written_through(workspace: Path, page: str) -> None:
    assert run("apply", "--emulator", "--auto-approve").exit_code == 0
    Path("site", page).unlink()
    Path("site", page).symlink_to(outside(workspace) / "victim")

    for args in (("apply", "--emulator", "--auto-approve"), ("render",)):
        line = one_line_error(*args)
        assert line == (
            f"Error: site/{page}: is a symbolic link; casereport never writes through one: "
            "remove it, and the page is written in its place"
        )
        untouched(workspace)
        assert Path("site", page).is_symlink()


def test_a_state_folder_that_is_a_link_is_refused(workspace: Path) -> None:
    Path(".casereport").symlink_to(outside(workspace), target_is_directory=True)
    line = one_line_error("apply", "--emulator", "--auto-approve")
    assert line == (
        "Error: .casereport: the state folder is a symbolic link; casereport never writes "
        "through one: replace it with a real folder (or use --state)"
    )
    untouched(workspace)


def test_a_state_file_that_is_a_link_is_refused(workspace: Path) -> None:
    Path(".casereport").mkdir()
    Path(".casereport/state.json").symlink_to(outside(workspace) / "victim")
    line = one_line_error("apply", "--emulator", "--auto-approve")
    assert line == (
        "Error: .casereport/state.json: the state file is a symbolic link; casereport never "
        "writes through one: replace it with a real file (or use --state)"
    )
    untouched(workspace)


def test_a_state_backup_that_is_a_link_is_replaced_not_followed(workspace: Path) -> None:
    assert run("apply", "--emulator", "--auto-approve").exit_code == 0
    backup = Path(".casereport/state.json.backup")
    backup.symlink_to(outside(workspace) / "victim")
    assert run("apply", "--emulator", "--auto-approve", "--refresh").exit_code == 0
    untouched(workspace)
    assert not backup.is_symlink()


def test_plan_out_to_a_link_is_refused(workspace: Path) -> None:
    Path("plan.json").symlink_to(outside(workspace) / "victim")
    line = one_line_error("plan", "--emulator", "--out", "plan.json")
    assert line == (
        "Error: plan.json: is a symbolic link; casereport never writes through one: "
        "replace it with a real file (or choose another path)"
    )
    untouched(workspace)
    assert Path("plan.json").is_symlink()


def test_plan_out_into_a_linked_folder_is_refused(workspace: Path) -> None:
    Path("plans").symlink_to(outside(workspace), target_is_directory=True)
    line = one_line_error("plan", "--emulator", "--out", "plans/plan.json")
    assert line.startswith("Error: plans: is a symbolic link; casereport never writes through")
    untouched(workspace)


# -- the writers themselves -----------------------------------------------------------------


def test_atomic_write_refuses_a_link_and_a_linked_folder(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    (tmp_path / "link").symlink_to(victim)
    (tmp_path / "folder").symlink_to(tmp_path, target_is_directory=True)
    with pytest.raises(CaseReportError, match="link: is a symbolic link"):
        atomic_write_text(tmp_path / "link", "new")
    with pytest.raises(CaseReportError, match="folder: is a symbolic link"):
        atomic_write_text(tmp_path / "folder" / "file", "new")
    assert victim.read_text() == "precious\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder", "link", "victim"]


def test_atomic_write_makes_a_readable_file_with_no_leftover(tmp_path: Path) -> None:
    atomic_write_text(tmp_path / "a.json", "{}")
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o666 & ~mask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def test_atomic_files_refuse_a_linked_folder(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "site").symlink_to(tmp_path / "real", target_is_directory=True)
    with pytest.raises(CaseReportError, match="site: is a symbolic link"):
        AtomicFiles(tmp_path / "site")
    assert list((tmp_path / "real").iterdir()) == []


def test_atomic_files_rename_over_a_link_without_following_it(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    site = tmp_path / "site"
    site.mkdir()
    (site / "a.html").symlink_to(victim)
    with AtomicFiles(site) as files:
        files.write("a.html", b"page")
    assert victim.read_text() == "precious\n"
    assert (site / "a.html").read_bytes() == b"page"
    assert not (site / "a.html").is_symlink()


def test_the_state_folders_gitignore_is_not_written_through_a_link(tmp_path: Path) -> None:
    from casereport.state.model import state_dir_gitignore

    state_dir = tmp_path / ".casereport"
    state_dir.mkdir()
    outside = tmp_path / "outside.txt"
    (state_dir / ".gitignore").symlink_to(outside)  # dangling: exists() says no file
    state_dir_gitignore(state_dir / "state.json")
    assert not outside.exists()
    assert (state_dir / ".gitignore").is_symlink()
    fresh = tmp_path / "other" / ".casereport"
    state_dir_gitignore(fresh / "state.json")
    assert (fresh / ".gitignore").read_text() == "*\n"
