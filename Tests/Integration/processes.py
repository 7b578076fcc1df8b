"""Child processes that cannot outlive the test run.

If pytest dies (a hard timeout, a crash, CI cancelling it), teardown code never runs; a proxy or Temporal server
left behind would hold ports and output pipes open. `setpriv --pdeathsig KILL` (util-linux) makes the kernel kill
the child when the pytest process goes away.
"""

from __future__ import annotations

import shutil

_SETPRIV = shutil.which("setpriv")


def bound_to_test_run(argv: list[str]) -> list[str]:
    """`argv`, prefixed so that the child is SIGKILLed when this process exits (when setpriv exists)."""
    return [_SETPRIV, "--pdeathsig", "KILL", *argv] if _SETPRIV else list(argv)
