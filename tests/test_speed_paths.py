"""Speed-related behaviour that must not regress (no timings here: see ``face2scene bench speed``)."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _omp_policy_after_import(env_value):
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if env_value is not None:
        env["OMP_WAIT_POLICY"] = env_value
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    code = "import os, face2scene; print(os.environ.get('OMP_WAIT_POLICY'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return out.stdout.strip()


def test_importing_face2scene_makes_openmp_threads_wait_passively():
    assert _omp_policy_after_import(None) == "PASSIVE"


def test_a_wait_policy_the_user_set_wins():
    assert _omp_policy_after_import("ACTIVE") == "ACTIVE"
