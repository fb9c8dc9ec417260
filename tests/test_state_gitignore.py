"""``state_dir_gitignore``: a ``.casereport`` folder keeps itself out of Git, and nothing
else is ever ignored (tests/test_symlinks.py: a link at its place is not written through)."""

from __future__ import annotations

from pathlib import Path

from casereport.state.model import state_dir_gitignore


def test_a_new_state_folder_ignores_everything_in_it(tmp_path: Path) -> None:
    state_dir_gitignore(tmp_path / ".casereport" / "state.json")
    assert (tmp_path / ".casereport" / ".gitignore").read_text() == "*\n"


def test_a_state_outside_a_casereport_folder_ignores_nothing(tmp_path: Path) -> None:
    # A state kept at the workspace's root: a "*" there would hide the whole workspace.
    state_dir_gitignore(tmp_path / "state.json")
    state_dir_gitignore(tmp_path / "ci-cache" / "state.json")
    assert list(tmp_path.rglob(".gitignore")) == []


def test_the_users_own_gitignore_in_the_state_folder_is_kept(tmp_path: Path) -> None:
    ignore = tmp_path / ".casereport" / ".gitignore"
    ignore.parent.mkdir()
    ignore.write_text("state.json.backup\n")
    state_dir_gitignore(tmp_path / ".casereport" / "state.json")
    assert ignore.read_text() == "state.json.backup\n"
