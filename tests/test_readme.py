"""Every Python example in the README runs, so the examples cannot rot.

Blocks that talk to a server (``MilvusClient(uri=...)``) run against a fresh ``keeldb serve``
(the README's port replaced by the test server's); the others run in order in one fresh
working directory, as a reader following the README top to bottom would run them. Each
block runs in a child process, like a user's script.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.server_util import KeelServer

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def python_blocks() -> list[str]:
    return BLOCK.findall(README.read_text())


def run_block(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(README.parent / "src"), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_readme_has_examples_of_both_kinds() -> None:
    blocks = python_blocks()
    assert any("MilvusClient(" in b for b in blocks)
    assert sum("keeldb.Client(" in b for b in blocks) >= 2


def test_server_examples_run_against_a_fresh_server(tmp_path: Path) -> None:
    blocks = [b for b in python_blocks() if "MilvusClient(" in b]
    for code in blocks:
        assert "127.0.0.1:19530" in code, "server examples use the default address"
        with KeelServer(tmp_path / f"data{blocks.index(code)}") as server:
            # The last line of each example is an expression worth seeing: print it too.
            *body, last = code.strip().splitlines()
            script = "\n".join([*body, f"print({last})"]).replace("127.0.0.1:19530", f"127.0.0.1:{server.port}")
            r = run_block(script, tmp_path)
            assert r.returncode == 0, r.stderr
            # The search on tag == "a" finds hits, nearest first.
            assert "'distance'" in r.stdout and "'tag': 'a'" in r.stdout


def test_embedded_examples_run_in_order(tmp_path: Path) -> None:
    blocks = [b for b in python_blocks() if "MilvusClient(" not in b]
    assert blocks
    for code in blocks:
        r = run_block(code, tmp_path)
        assert r.returncode == 0, f"README example failed:\n{code}\n{r.stderr}"
    # What the first example says it leaves behind: 90 live rows, now with an HNSW index.
    check = (
        "import keeldb\n"
        "c = keeldb.Client('./my_data')\n"
        "print(c.query('docs', filter='', output_fields=['count(*)'])[0]['count(*)'])\n"
        "print(c.describe_index('docs', c.list_indexes('docs')[0])['index_type'])\n"
    )
    r = run_block(check, tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["90", "HNSW"]


def test_every_cli_flag_says_what_it_does() -> None:
    import argparse

    from keeldb.cli import _parser

    parser = _parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, cmd in sub.choices.items():
        for action in cmd._actions:
            if action.option_strings and action.dest != "help":
                assert action.help and len(action.help) > 10, f"keeldb {name} {action.option_strings[0]}"
    r = subprocess.run([sys.executable, "-m", "keeldb.cli", "chaos", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "(default: 100000)" in r.stdout and "--keep-data" in r.stdout
