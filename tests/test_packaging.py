"""keeldb installed from its wheel into a brand-new virtual environment works by itself.

A dependency the code imports but ``pyproject.toml`` does not declare is invisible on a
machine where it happens to be installed; here nothing is installed but what the wheel asks
for. The environment sees no site-packages of the interpreter running the tests and no
``src/`` on its path. Checked: ``keeldb --help``; every module of the package imports, except
cluster mode's, which say in one line which extra they need; ``keeldb serve`` answers a
pymilvus round trip; the embedded client writes, reads and searches.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "KEELDB_"))}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("wheel")
    env = clean_env()
    wheels = root / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(REPO)],
        check=True, env=env, cwd=root, timeout=600,
    )  # fmt: skip
    (wheel,) = wheels.glob("keeldb-*.whl")
    v = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(v)], check=True, env=env, timeout=300)
    subprocess.run([v / "bin" / "pip", "install", "-q", str(wheel)], check=True, env=env, cwd=root, timeout=900)
    return v


def run(*args: str | Path, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=timeout
    )


def test_the_venv_is_isolated(venv: Path, tmp_path: Path) -> None:
    r = run(venv / "bin" / "python", "-c", "import sys, keeldb; print(sys.prefix, keeldb.__file__)", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    prefix, where = r.stdout.split()
    assert Path(prefix) == venv and where.startswith(str(venv)), r.stdout
    r = run(venv / "bin" / "python", "-c", "import hypothesis", cwd=tmp_path)
    assert r.returncode != 0, "a test-only package leaked into the fresh environment"


def test_help(venv: Path, tmp_path: Path) -> None:
    r = run(venv / "bin" / "keeldb", "--help", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "chaos" in r.stdout and "serve" in r.stdout


def test_every_module_imports_or_names_its_extra(venv: Path, tmp_path: Path) -> None:
    code = textwrap.dedent(
        """
        import importlib, pkgutil, keeldb
        from keeldb.errors import MissingExtra
        for m in pkgutil.walk_packages(keeldb.__path__, "keeldb."):
            try:
                importlib.import_module(m.name)
                print("ok", m.name)
            except MissingExtra as e:
                print("extra", m.name, str(e).replace(chr(10), " "))
        """
    )
    r = run(venv / "bin" / "python", "-c", code, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert any(line == "ok keeldb.server.service" for line in lines)
    assert any(line == "ok keeldb.index.faiss_index" for line in lines)
    needing = [line for line in lines if line.startswith("extra")]
    assert needing, "cluster mode needs boto3, which is only in the cluster extra"
    for line in needing:
        assert line.split()[1].startswith("keeldb.cluster."), line
        assert "pip install 'keeldb[cluster]'" in line, line


def test_cluster_mode_without_its_extra_is_one_line(venv: Path, tmp_path: Path) -> None:
    r = run(
        venv / "bin" / "keeldb", "serve", "--data", tmp_path / "d", "--port", "0",
        "--cluster", "etcd://127.0.0.1:9", "--storage", "s3://bucket/prefix", cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0, r.stderr
    assert "pip install 'keeldb[cluster]'" in r.stderr


def test_serve_and_a_pymilvus_round_trip(venv: Path, tmp_path: Path) -> None:
    server = subprocess.Popen(
        [venv / "bin" / "keeldb", "serve", "--data", tmp_path / "data", "--port", "0"],
        cwd=tmp_path, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        assert "listening on" in line, line + (server.stderr.read() if server.poll() is not None else "")
        port = int(line.split()[4].rsplit(":", 1)[1])
        code = textwrap.dedent(
            f"""
            from pymilvus import MilvusClient
            c = MilvusClient(uri="http://127.0.0.1:{port}")
            c.create_collection("t", dimension=3, metric_type="L2")
            c.insert("t", [{{"id": i, "vector": [i, 0, 1]}} for i in range(50)])
            print(c.query("t", filter="", output_fields=["count(*)"])[0]["count(*)"])
            print(c.search("t", [[3, 0, 1]], limit=1)[0][0]["id"])
            """
        )
        r = run(venv / "bin" / "python", "-c", code, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        assert r.stdout.split() == ["50", "3"]
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert server.returncode == 0


def test_embedded_client(venv: Path, tmp_path: Path) -> None:
    code = textwrap.dedent(
        """
        import keeldb
        c = keeldb.Client("./db")
        c.create_collection("t", dimension=4, metric_type="L2")
        c.insert("t", [{"id": i, "vector": [i, 0, 0, 1]} for i in range(2000)])
        c.flush("t")
        ip = c.prepare_index_params()
        c.release_collection("t")
        c.drop_index("t", "vector")
        ip.add_index("vector", "HNSW", metric_type="L2", params={"M": 8, "efConstruction": 40})
        c.create_index("t", ip)
        c.load_collection("t")
        print(c.describe_index("t", "vector")["pending_index_rows"])
        print(c.search("t", [[7, 0, 0, 1]], limit=1)[0][0]["id"])
        c.close()
        """
    )
    r = run(venv / "bin" / "python", "-c", code, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["0", "7"]
