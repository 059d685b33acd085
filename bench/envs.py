"""The reference tools, each installed where the benchmarks find them; nothing is installed at benchmark time.

* Data-Juicer 1.6.1 in its own venv (``--dj-venv``, env ``SLUICE_BENCH_DJ_VENV``, default ``bench/.venvs/dj``):
  torch first (the project's pin, the CPU wheel), then ``py-data-juicer==1.6.1 aiohttp scipy ray`` (it imports
  ray at start-up, touches torch after every op, and its MinHash op needs scipy). ``<venv>/.ready`` is written
  once ``import data_juicer`` works offline.
* datasketch and rensa into this interpreter (they run in-process beside Sluice's MinHash).

Data-Juicer always runs with DJ_OFFLINE_ENV, so it can neither install packages nor download models mid-run.

    python bench/envs.py [--dj-venv PATH]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DJ_VERSION = "1.6.1"
TORCH_PIN = "torch==2.13.0"  # the project's pin (pyproject.toml): the CPU wheel, never a CUDA build
DJ_PACKAGES = (f"py-data-juicer=={DJ_VERSION}", "aiohttp", "scipy", "ray")
IN_PROCESS_PACKAGES = {"datasketch": "datasketch==2.0.0", "rensa": "rensa==0.5.0", "matplotlib": "matplotlib"}
DJ_OFFLINE_ENV = {"UV_OFFLINE": "1", "PIP_NO_INDEX": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def dj_venv_path(arg: str | Path | None = None) -> Path:
    return Path(arg or os.environ.get("SLUICE_BENCH_DJ_VENV") or ROOT / "bench" / ".venvs" / "dj")


def dj_env() -> dict[str, str]:
    return os.environ | DJ_OFFLINE_ENV


def dj_ready(venv: Path) -> bool:
    return (venv / ".ready").exists() and (venv / "bin" / "dj-process").exists()


def _run(cmd: list[str], env: dict[str, str] | None = None) -> None:
    print("$", " ".join(cmd), flush=True)
    done = subprocess.run(cmd, env=env, check=False)
    if done.returncode != 0:
        sys.exit(f"envs: `{' '.join(cmd)}` exited {done.returncode}")


def ensure_dj(venv: Path) -> Path:
    """Create the Data-Juicer venv unless `<venv>/.ready` says it is complete. Returns the venv."""
    if dj_ready(venv):
        return venv
    python = venv / "bin" / "python"
    if not python.exists():
        _run([sys.executable, "-m", "venv", str(venv)])
    _run([str(python), "-m", "pip", "install", "--disable-pip-version-check", TORCH_PIN])
    _run([str(python), "-m", "pip", "install", "--disable-pip-version-check", *DJ_PACKAGES])
    _run([str(python), "-c", "import data_juicer, scipy, ray; print('data_juicer', data_juicer.__version__)"], dj_env())
    (venv / ".ready").touch()
    return venv


def ensure_in_process() -> None:
    missing = [spec for module, spec in IN_PROCESS_PACKAGES.items() if importlib.util.find_spec(module) is None]
    if missing:
        _run([sys.executable, "-m", "pip", "install", "--disable-pip-version-check", *missing])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dj-venv", default=None, help="default: $SLUICE_BENCH_DJ_VENV or bench/.venvs/dj")
    args = parser.parse_args()
    ensure_in_process()
    venv = ensure_dj(dj_venv_path(args.dj_venv))
    print(f"Data-Juicer {DJ_VERSION}: {venv} ready")


if __name__ == "__main__":
    main()
