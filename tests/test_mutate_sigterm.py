"""The suite run by a process that installed a SIGTERM handler of its own, as `make mutate` does.

mutmut's fork server runs each mutant's tests by `pytest.main` in a child forked from it,
with its handler still in place: on SIGTERM it SIGKILLs every other mutant's worker. A
render worker (forked without exec) inherited it, and when its pool ended it with SIGTERM
after another worker died, an unrelated mutant's run was killed and reported as a
"segfault" (docs/mutation.md). tests/conftest.py starts each session with the default.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import casereport

ROOT = Path(__file__).resolve().parent.parent

# A test, in a session of its own: a child forked without exec, ended with SIGTERM, must
# end by that signal, not run the handler of the process that started pytest.
FORKED_CHILD_TEST = """
import os, signal, time

def test_a_forked_child_ends_by_sigterm() -> None:
    ready, up = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(up, b"+")  # past fork's own set-up, which drops a signal received in it
        time.sleep(60)
        os._exit(0)
    assert os.read(ready, 1) == b"+"
    os.kill(pid, signal.SIGTERM)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == -signal.SIGTERM
"""

# As mutmut's fork server: a handler installed, then pytest run in this process (with the
# suite's conftest, where the default is put back).
RUNNER = """
import os, signal, sys
import pytest

signal.signal(signal.SIGTERM, lambda signum, frame: os._exit(99))
sys.exit(pytest.main(["-q", "-p", "no:randomly", "-p", "no:cacheprovider",
                      "-p", "tests.conftest", "--rootdir", sys.argv[1], sys.argv[2]]))
"""


def test_forked_children_of_a_session_end_by_sigterm_whatever_handler_pytest_was_started_with(
    tmp_path: Path,
) -> None:
    test = tmp_path / "test_forked.py"
    test.write_text(FORKED_CHILD_TEST, encoding="utf-8")
    (tmp_path / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    # `tests` from this suite's folder, casereport as this test imports it (under
    # `make mutate`, both are the copies in mutants/).
    source = str(Path(casereport.__file__).resolve().parent.parent)
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(ROOT), source])}

    done = subprocess.run(
        [sys.executable, "-c", RUNNER, str(tmp_path), str(test)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout
