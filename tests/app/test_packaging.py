"""What ``pip install`` puts on a booth: both packages with every sub-package, the console
script, and ``python -m`` entry points, importable away from the source tree."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


def _modules(root: Path, package: str) -> list[str]:
    out = []
    for path in sorted((root / package).rglob("*.py")):
        rel = path.relative_to(root).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        if rel.name != "__main__":
            out.append(".".join(parts))
    return out


@pytest.fixture
def install_dir() -> Iterator[Path]:
    """Outside pytest's temporary tree: the privacy scan would read the installed sources
    (their docstrings hold the masking examples) as if the daemon had written them."""
    path = Path(tempfile.mkdtemp(prefix="gated-install-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_a_plain_install_holds_every_module(install_dir: Path) -> None:
    target = install_dir / "site"
    done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                           "--target", str(target), str(ROOT)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    modules = _modules(ROOT, "gated") + _modules(ROOT, "drivers")
    assert "gated.booth.logic" in modules and "drivers.modbus_gate.driver" in modules
    for module in modules:  # the source tree's modules, each one installed
        assert (target / module.replace(".", "/")).with_suffix(".py").exists() or \
            (target / module.replace(".", "/") / "__init__.py").exists(), module
    env = {**os.environ, "PYTHONPATH": str(target)}
    code = "import importlib, sys\nfor m in sys.argv[1:]:\n    importlib.import_module(m)\n"
    imported = subprocess.run([sys.executable, "-c", code, *modules], cwd=install_dir, env=env,
                              capture_output=True, text=True, timeout=60)
    assert imported.returncode == 0, imported.stderr[-2000:]
    # the MQTT contract ships as package data, readable from the installed package
    assert (target / "gated" / "wire" / "asyncapi.yaml").is_file()
    contract = subprocess.run([sys.executable, "-c", "from gated.wire import contract\n"
                               "print(contract.__file__, len(contract.schemas()))"],
                              cwd=install_dir, env=env, capture_output=True, text=True,
                              timeout=60)
    assert contract.returncode == 0 and contract.stdout.startswith(str(target)), contract.stderr
    version = subprocess.run([sys.executable, "-m", "gated", "--version"], cwd=install_dir,
                             env=env, capture_output=True, text=True, timeout=30)
    assert version.returncode == 0 and version.stdout.startswith("gated "), version.stderr
    for sim in ("relay_board", "sam_reader", "printer"):
        helped = subprocess.run([sys.executable, "-m", f"drivers.sim.{sim}", "--help"],
                                cwd=install_dir, env=env, capture_output=True, text=True,
                                timeout=30)
        assert helped.returncode == 0 and "usage" in helped.stdout, (sim, helped.stderr)


def test_the_console_script_runs() -> None:
    script = Path(sys.executable).parent / "gated"
    if not script.exists():
        pytest.skip("gated is not installed in this interpreter's environment")
    done = subprocess.run([str(script), "check-config", "--no-files",
                           str(ROOT / "config/gated.example.toml")],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and ": ok (site" in done.stdout, done.stderr
    done = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and done.stdout.startswith("gated ")
