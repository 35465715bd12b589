"""CPU time of a process tree: a grandchild's CPU counts for its grandparent's tree."""

from __future__ import annotations

import subprocess
import sys

from benchmarks import cputime

BURN = "import time, sys\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass\n" \
       "print('burnt', flush=True)\nsys.stdin.read()\n"


def test_a_grandchild_s_cpu_counts_in_the_tree_not_in_its_grandparent() -> None:
    parent = subprocess.Popen([sys.executable, "-c", "import subprocess, sys\n"
                               f"child = subprocess.Popen([sys.executable, '-c', {BURN!r}])\nchild.wait()\n"],
                              stdout=subprocess.PIPE, stdin=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None and parent.stdout.readline() == "burnt\n"
        assert cputime.tree_seconds(parent.pid) >= 0.3
        assert cputime.own_seconds(parent.pid) < 0.3
        assert len(cputime.children(parent.pid)) == 1
    finally:
        assert parent.stdin is not None
        parent.stdin.close()
        parent.wait(timeout=10)
