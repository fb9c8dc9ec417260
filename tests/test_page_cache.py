"""The page cache: a plan reads again only the pages whose ``stat`` changed, and still
sees every hand edit and deletion.

The unit tests build ``PageCache`` over real files; the end-to-end ones run ``plan`` and
``apply`` against the emulator (``apply_workspace``). ``SETTLED_NS`` (how old a page's
last change must be before its hash is kept) is set to 0 where a test needs pages it has
just written to be recorded; the tests of that rule keep it.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from apply_workspace import Workspace, renders
from casereport.emulator.server import RunningEmulator
from casereport.errors import CaseReportError
from casereport.state import page_cache
from casereport.state.page_cache import PageCache, load_page_cache, page_cache_path

Emulator = Callable[..., RunningEmulator]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def stat_key(path: Path) -> tuple[int, int, int, int, int]:
    found = path.stat()
    return (found.st_size, found.st_mtime_ns, found.st_ctime_ns, found.st_ino, found.st_dev)


@pytest.fixture
def settled_now(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages count as settled once written (the tests wait past the clock tick instead)."""
    monkeypatch.setattr(page_cache, "SETTLED_NS", 0)


def page(site: Path, name: str, data: bytes) -> Path:
    site.mkdir(exist_ok=True)
    path = site / name
    path.write_bytes(data)
    return path


def next_tick(path: Path, change: Callable[[], None]) -> None:
    """``change`` the file in a later file-time tick than its last change (file times are
    coarse: a change within the same tick would keep its change time)."""
    before = path.stat().st_ctime_ns
    for _ in range(200):
        time.sleep(0.01)
        change()
        if path.stat().st_ctime_ns != before:
            return
    pytest.fail(f"{path}: the change time did not move in 2 s")


# -- reading pages through the cache ------------------------------------------------------


def test_a_page_whose_stat_is_recorded_is_not_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = page(tmp_path, "a.md", b"# A\n")
    index = PageCache(tmp_path, {"a.md": (stat_key(path), "recorded-hash")})
    monkeypatch.setattr(page_cache, "file_stat_sha256", lambda _: pytest.fail("read again"))

    assert index.sha256("a.md") == "recorded-hash"


def test_a_page_is_hashed_when_the_index_has_no_entry_for_it(tmp_path: Path) -> None:
    page(tmp_path, "a.md", b"# A\n")

    assert PageCache(tmp_path).sha256("a.md") == sha(b"# A\n")
    assert PageCache(tmp_path).sha256("missing.md") is None


def test_a_page_whose_size_changed_is_hashed_again(tmp_path: Path) -> None:
    path = page(tmp_path, "a.md", b"# A\n")
    recorded = (stat_key(path), sha(b"# A\n"))
    path.write_bytes(b"# A, edited\n")

    assert PageCache(tmp_path, {"a.md": recorded}).sha256("a.md") == sha(b"# A, edited\n")


def test_an_edit_that_keeps_size_and_modification_time_is_still_seen(tmp_path: Path) -> None:
    """Only the change time gives it away: no program can set it back."""
    path = page(tmp_path, "a.md", b"# A\n")
    recorded = (stat_key(path), sha(b"# A\n"))
    mtime = path.stat().st_mtime_ns

    def edit() -> None:
        path.write_bytes(b"# B\n")
        os.utime(path, ns=(mtime, mtime))

    next_tick(path, edit)

    assert path.stat().st_size == recorded[0][0]
    assert path.stat().st_mtime_ns == recorded[0][1]
    assert PageCache(tmp_path, {"a.md": recorded}).sha256("a.md") == sha(b"# B\n")


@pytest.mark.parametrize("field", [3, 4], ids=["inode", "device"])
def test_a_page_on_another_inode_or_device_is_hashed_again(tmp_path: Path, field: int) -> None:
    """Same size and times, another file: a copy restored with its times, say."""
    path = page(tmp_path, "a.md", b"# A\n")
    key = list(stat_key(path))
    key[field] += 1
    recorded = ((key[0], key[1], key[2], key[3], key[4]), "recorded-hash")

    assert PageCache(tmp_path, {"a.md": recorded}).sha256("a.md") == sha(b"# A\n")


def test_a_page_replaced_by_another_file_is_hashed_again(tmp_path: Path) -> None:
    path = page(tmp_path, "a.md", b"# A\n")
    recorded = (stat_key(path), sha(b"# A\n"))
    replacement = page(tmp_path, "b.md", b"# B\n")
    os.replace(replacement, path)  # an editor's save: another inode under the name

    assert PageCache(tmp_path, {"a.md": recorded}).sha256("a.md") == sha(b"# B\n")


def test_a_deleted_page_is_missing_whatever_the_index_says(tmp_path: Path) -> None:
    path = page(tmp_path, "a.md", b"# A\n")
    recorded = (stat_key(path), sha(b"# A\n"))
    path.unlink()

    index = PageCache(tmp_path, {"a.md": recorded})
    assert index.sha256("a.md") is None
    assert index.entries(complete=True) == {}
    assert index.entries(complete=False) == {}


# -- what is recorded ---------------------------------------------------------------------


def test_a_page_changed_in_the_last_seconds_is_not_recorded(tmp_path: Path) -> None:
    """Its next change could fall in the same coarse tick and keep its stat."""
    page(tmp_path, "a.md", b"# A\n")
    index = PageCache(tmp_path)

    assert index.sha256("a.md") == sha(b"# A\n")
    assert index.entries(complete=True) == {}


def test_a_settled_page_is_recorded_with_its_stat(tmp_path: Path, settled_now: None) -> None:
    path = page(tmp_path, "a.md", b"# A\n")
    time.sleep(0.01)
    index = PageCache(tmp_path)
    index.sha256("a.md")

    assert index.entries(complete=True) == {"a.md": (stat_key(path), sha(b"# A\n"))}


def test_a_page_is_settled_only_if_changed_before_the_run_began(
    tmp_path: Path, settled_now: None
) -> None:
    index = PageCache(tmp_path)  # the run begins
    time.sleep(0.01)
    page(tmp_path, "a.md", b"# A\n")
    index.sha256("a.md")

    assert index.entries(complete=True) == {}


def test_a_folder_in_a_pages_place_is_an_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "a.md").mkdir()
    index = PageCache(tmp_path, {"a.md": (stat_key(tmp_path / "a.md"), "recorded-hash")})

    with pytest.raises(CaseReportError) as raised:
        index.sha256("a.md")
    assert (
        raised.value.message
        == f"{tmp_path / 'a.md'}: is not a file; move it away to write the page"
    )
    assert index.entries(complete=True) == {}


def test_a_targeted_run_keeps_the_entries_of_pages_it_did_not_look_at(tmp_path: Path) -> None:
    a, b = page(tmp_path, "a.md", b"# A\n"), page(tmp_path, "b.md", b"# B\n")
    known = {"a.md": (stat_key(a), sha(b"# A\n")), "b.md": (stat_key(b), sha(b"# B\n"))}
    index = PageCache(tmp_path, known)
    index.sha256("a.md")

    assert index.entries(complete=False) == known
    assert index.entries(complete=True) == {"a.md": known["a.md"]}


# -- the file -----------------------------------------------------------------------------


def test_the_index_is_saved_and_read_back(tmp_path: Path, settled_now: None) -> None:
    site = tmp_path / "site"
    path = page(site, "a.md", b"# A\n")
    time.sleep(0.01)
    index = PageCache(site)
    index.sha256("a.md")
    where = page_cache_path(tmp_path / "state.json", site)
    index.save(where, complete=True)

    raw = json.loads(where.read_text(encoding="utf-8"))
    assert raw == {
        "format": 1,
        "site": str(site.resolve()),
        "files": {"a.md": [*stat_key(path), sha(b"# A\n")]},
    }
    assert load_page_cache(where, site).entries(complete=False) == index.entries(complete=True)


def test_an_unchanged_index_is_not_written_again(tmp_path: Path, settled_now: None) -> None:
    site = tmp_path / "site"
    page(site, "a.md", b"# A\n")
    time.sleep(0.01)
    where = page_cache_path(tmp_path / "state.json", site)
    first = PageCache(site)
    first.sha256("a.md")
    first.save(where, complete=True)
    written = where.stat()

    again = load_page_cache(where, site)
    assert again.sha256("a.md") == sha(b"# A\n")
    again.save(where, complete=True)

    assert (where.stat().st_ino, where.stat().st_mtime_ns) == (
        written.st_ino,
        written.st_mtime_ns,
    )


def test_no_cache_is_written_where_the_state_folder_does_not_exist(
    tmp_path: Path, settled_now: None
) -> None:
    site = tmp_path / "site"
    page(site, "a.md", b"# A\n")
    time.sleep(0.01)
    index = PageCache(site)
    index.sha256("a.md")
    index.save(page_cache_path(tmp_path / ".casereport" / "state.json", site), complete=True)

    assert not (tmp_path / ".casereport").exists()


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"not json",
        b"[]",
        b'{"format": 2, "site": "SITE", "files": {}}',
        b'{"format": true, "site": "SITE", "files": {"a.md": [4, 1, 1, 1, 1, "h"]}}',
        b'{"format": 1, "site": "/another/site", "files": {"a.md": [4, 1, 1, 1, 1, "h"]}}',
        b'{"format": 1, "site": "SITE", "files": []}',
        b'{"format": 1, "site": "SITE", "files": {"a.md": [4, 1, 1, 1, "h"]}}',
        b'{"format": 1, "site": "SITE", "files": {"a.md": [4, 1, 1, 1, 1.5, "h"]}}',
        b'{"format": 1, "site": "SITE", "files": {"a.md": [4, 1, 1, 1, 1, 7]}}',
        b'{"format": 1, "site": "SITE", "files": {"a.md": {"size": 4}}}',
    ],
)
def test_a_damaged_or_foreign_cache_is_ignored(tmp_path: Path, content: bytes) -> None:
    site = tmp_path / "site"
    page(site, "a.md", b"# A\n")
    where = page_cache_path(tmp_path / "state.json", site)
    where.write_bytes(content.replace(b"SITE", str(site.resolve()).encode()))

    index = load_page_cache(where, site)
    assert index.entries(complete=False) == {}
    assert index.sha256("a.md") == sha(b"# A\n")


# -- plan and apply through the cache ------------------------------------------------------


@pytest.fixture
def applied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, emulator: Emulator, settled_now: None
) -> Workspace:
    monkeypatch.chdir(tmp_path)
    ws = Workspace(tmp_path, emulator())
    ws.apply()
    time.sleep(0.01)  # the pages settle (SETTLED_NS is 0)
    return ws


def cache_path(ws: Workspace, site: str = "site") -> Path:
    return page_cache_path(ws.state_path, ws.root / site)


def index_of(ws: Workspace, site: str = "site") -> dict[str, list[object]]:
    raw = json.loads(cache_path(ws, site).read_text(encoding="utf-8"))
    files: dict[str, list[object]] = raw["files"]
    return files


def test_a_plan_records_the_pages_it_read(applied: Workspace) -> None:
    ws = applied
    code, _ = ws.plan_json()

    assert code == 0
    recorded = index_of(ws)
    assert sorted(recorded) == sorted(p.name for p in ws.site.iterdir())
    for name, entry in recorded.items():
        assert entry == [*stat_key(ws.site / name), sha((ws.site / name).read_bytes())]


def test_a_plan_with_the_index_reads_no_page(
    applied: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = applied
    ws.plan_json()
    monkeypatch.setattr(page_cache, "file_stat_sha256", lambda path: pytest.fail(f"read {path}"))

    code, plan = ws.plan_json()

    assert code == 0
    assert renders(plan) == {}


@pytest.mark.parametrize("how", ["edited", "edited keeping size and time", "deleted"])
def test_a_hand_edit_after_the_index_was_written_is_still_drift(
    applied: Workspace, how: str
) -> None:
    ws = applied
    ws.plan_json()
    path = ws.site / "support-backlog.md"
    original = path.read_bytes()
    if how == "deleted":
        path.unlink()
        reason = "output support-backlog.md is missing"
    else:
        mtime = path.stat().st_mtime_ns
        edited = original.replace(b"Support", b"Xupport", 1)
        assert edited != original

        def edit() -> None:
            path.write_bytes(edited if "keeping" in how else b"# edited by hand\n")
            if "keeping" in how:
                os.utime(path, ns=(mtime, mtime))

        next_tick(path, edit)
        reason = "output support-backlog.md was edited by hand"

    for _ in range(2):  # the plan that records the edited page, and the one after it
        code, plan = ws.plan_json()
        assert code == 2
        assert renders(plan) == {"support-backlog": ["render", reason]}

    ws.apply()
    assert path.read_bytes() == original


def test_apply_removes_what_a_killed_write_of_the_cache_left(applied: Workspace) -> None:
    ws = applied
    name = cache_path(ws).name
    leftover = ws.state_path.parent / f".{name}.k1lled_0.tmp"
    other = ws.state_path.parent / f".{name}.notours.tmp"  # not 8 characters
    leftover.write_bytes(b'{"format": 1')
    other.write_bytes(b"kept")

    ws.apply()

    assert not leftover.exists()
    assert other.read_bytes() == b"kept"


def saved_cache(tmp_path: Path, site: Path) -> PageCache:
    """A cache that read one settled page (so it has something to save)."""
    page(site, "a.md", b"# A\n")
    time.sleep(0.01)
    cache = PageCache(site)
    cache.sha256("a.md")
    return cache


@pytest.mark.parametrize("planted", ["link", "folder"])
def test_a_link_or_folder_in_the_caches_place_is_left_and_no_error(
    tmp_path: Path, settled_now: None, planted: str
) -> None:
    site = tmp_path / "site"
    cache = saved_cache(tmp_path, site)
    where = page_cache_path(tmp_path / "state.json", site)
    target = tmp_path / "elsewhere.json"
    target.write_bytes(b"not ours")
    if planted == "link":
        where.symlink_to(target)
    else:
        where.mkdir()

    cache.save(where, complete=True)  # no error

    assert target.read_bytes() == b"not ours"
    assert where.is_symlink() if planted == "link" else where.is_dir()


def test_a_cache_that_cannot_be_written_is_no_error(
    tmp_path: Path, settled_now: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    cache = saved_cache(tmp_path, site)

    def full_disk(path: Path, data: bytes) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(page_cache, "atomic_write_bytes", full_disk)
    cache.save(page_cache_path(tmp_path / "state.json", site), complete=True)


def test_a_cache_behind_a_link_or_too_big_is_not_read(
    tmp_path: Path, settled_now: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    real = tmp_path / "real.json"
    saved_cache(tmp_path, site).save(real, complete=True)
    assert load_page_cache(real, site).entries(complete=False) != {}
    link = tmp_path / "link.json"
    link.symlink_to(real)

    assert load_page_cache(link, site).entries(complete=False) == {}
    monkeypatch.setattr(page_cache, "MAX_BYTES", real.stat().st_size - 1)
    assert load_page_cache(real, site).entries(complete=False) == {}


def test_each_site_has_its_own_cache_named_after_the_state_file(tmp_path: Path) -> None:
    one = page_cache_path(tmp_path / "data" / "state.json", tmp_path / "site")
    other = page_cache_path(tmp_path / "data" / "state.json", tmp_path / "site-staging")

    assert one.parent == other.parent == tmp_path / "data"
    assert one.name.startswith("state.json.pages-")
    assert other.name.startswith("state.json.pages-")
    assert one != other
    assert one == page_cache_path(tmp_path / "data" / "state.json", tmp_path / "." / "site")


def test_plans_of_two_sites_keep_both_caches(applied: Workspace) -> None:
    ws = applied
    assert ws.apply("--site-dir", "site-staging").exit_code == 0
    time.sleep(0.01)

    ws.plan_json()
    ws.plan_json("--site-dir", "site-staging")

    assert sorted(index_of(ws)) == sorted(p.name for p in ws.site.iterdir())
    staging = ws.root / "site-staging"
    assert sorted(index_of(ws, "site-staging")) == sorted(p.name for p in staging.iterdir())


def test_a_targeted_plan_keeps_the_other_pages_entries(applied: Workspace) -> None:
    ws = applied
    ws.plan_json()
    everything = index_of(ws)

    code, _ = ws.plan_json("--target", "support-backlog")

    assert code == 0
    assert index_of(ws) == everything


def test_a_full_plan_drops_the_entries_of_pages_no_longer_recorded(applied: Workspace) -> None:
    ws = applied
    ws.plan_json()
    path = cache_path(ws)
    raw = json.loads(path.read_text(encoding="utf-8"))
    raw["files"]["gone.md"] = raw["files"]["index.md"]
    path.write_text(json.dumps(raw), encoding="utf-8")

    ws.plan_json()

    assert "gone.md" not in index_of(ws)


def test_a_folder_in_a_pages_place_fails_the_plan_with_one_line(applied: Workspace) -> None:
    ws = applied
    (ws.site / "support-backlog.md").unlink()
    (ws.site / "support-backlog.md").mkdir()

    result = ws.plan()

    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == (
        "Error: site/support-backlog.md: is not a file; move it away to write the page"
    )


def test_a_link_in_place_of_the_state_folder_does_not_fail_a_plan(
    applied: Workspace, tmp_path: Path
) -> None:
    """Nor any other reason the cache cannot be written (it did not, before the cache)."""
    ws = applied
    moved = tmp_path.parent / f"{tmp_path.name}-state"
    ws.state_path.parent.rename(moved)
    ws.state_path.parent.symlink_to(moved)

    result = ws.plan()

    assert result.exit_code == 0, result.output
