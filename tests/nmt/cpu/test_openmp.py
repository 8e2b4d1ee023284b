"""The OpenMP wait policy is chosen before torch loads, and the user's wins."""

import os
import subprocess
import sys

import pytest

PROBE = (
    "import os, sys\n"
    "{imports}\n"
    "print(choose_wait_policy())\n"
    "print(os.environ.get('GOMP_SPINCOUNT'), 'torch' in sys.modules)\n"
)


def run_fresh(imports: str, **env_overrides) -> list[str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}  # fmt: skip
    env.update(env_overrides)
    code = PROBE.format(imports=imports)
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()


def test_a_short_spin_when_nobody_chose():
    lines = run_fresh("from seqembed.nmt.cpu.openmp import choose_wait_policy")
    assert lines == ["GOMP_SPINCOUNT=1000", "1000 False"]


def test_the_users_policy_is_kept():
    lines = run_fresh(
        "from seqembed.nmt.cpu.openmp import choose_wait_policy",
        OMP_WAIT_POLICY="PASSIVE",
    )
    assert lines == ["OMP_WAIT_POLICY=PASSIVE", "None False"]
    lines = run_fresh(
        "from seqembed.nmt.cpu.openmp import choose_wait_policy", GOMP_SPINCOUNT="0"
    )
    assert lines == ["GOMP_SPINCOUNT=0", "0 False"]


@pytest.mark.slow
def test_too_late_once_torch_is_loaded():
    lines = run_fresh(
        "import torch\nfrom seqembed.nmt.cpu.openmp import choose_wait_policy"
    )
    assert lines == ["OpenMP's default (torch was imported first)", "None True"]


def test_the_command_line_chooses_before_importing_torch():
    # Importing the entry point changes nothing; running it sets the policy
    # before any command imports torch.
    lines = run_fresh(
        "from seqembed.cli.main import main\n"
        "assert 'GOMP_SPINCOUNT' not in os.environ and 'torch' not in sys.modules\n"
        "from seqembed.nmt.cpu.openmp import choose_wait_policy\n"
        "try:\n"
        "    main(['--version'])\n"
        "except SystemExit:\n"
        "    pass"
    )
    assert lines[-2:] == ["GOMP_SPINCOUNT=1000", "1000 False"]
