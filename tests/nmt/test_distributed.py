"""Distributed training, for real: torchrun (``python -m torch.distributed.run``)
starting 2 processes on this machine, 2 "nodes" meeting over loopback through
a c10d rendezvous, Ctrl-C and SIGKILL sent to them, and what they wrote
compared with a one-process run."""

import contextlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from helpers import assert_same_state  # model and Adam, bit for bit

from seqembed.cli.demo import resource_path
from seqembed.cli.main import main
from seqembed.cli.train import without_nproc
from seqembed.data.batches import epoch_batches, rank_share
from seqembed.errors import InputError
from seqembed.nmt import distributed
from seqembed.nmt.checkpoint import load_checkpoint

pytestmark = pytest.mark.skipif(
    not (dist.is_available() and dist.is_gloo_available()),
    reason="this torch build has no torch.distributed with gloo",
)

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
CORPUS = str(resource_path("builtin.tsv"))
# The built-in corpus (317 training pairs), a tiny model: 20 batches an epoch.
# Characters, not jieba: jieba keeps some of a user dictionary in a global
# (its HMM's forced splits), so an earlier test in this process could change
# the words of the one-process runs here, and not those of the subprocesses.
TINY = ["--set", "model.emb_size=16", "--set", "model.hidden_size=32",
        "--set", "train.batch_size=16", "--set", "train.valid_bleu_max=20",
        "--set", "data.src_segmentation=char"]  # fmt: skip
# No dropout, so that 2 processes can match 1 (they draw other masks).
EXACT = [*TINY, "--epochs", "2", "--set", "model.dropout=0"]
TIMING = ("elapsed_s", "tgt_tokens_per_s")


def seqembed(*args: str) -> list[str]:
    return [sys.executable, "-m", "seqembed", *args]


def torchrun(*args: str, nproc: int = 2) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc-per-node={nproc}", "-m", "seqembed", *args]  # fmt: skip


@contextlib.contextmanager
def started(command, log_path: Path, env=ENV):
    """A launcher in a session of its own, its stderr in ``log_path``; on the
    way out it and every process it started are gone, whatever happened."""
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, env=env, stderr=log, start_new_session=True)
        try:
            yield process
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def run(command, env=ENV, timeout=300):
    return subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=timeout
    )


def metrics(run_dir: Path) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [
        {k: v for k, v in json.loads(line).items() if k not in TIMING} for line in lines
    ]


def largest_difference(a: dict, b: dict) -> float:
    return max(float((a[name] - b[name]).abs().max()) for name in a)


# ---------------------------------------------------------------- in one process


def test_every_rank_gets_an_even_disjoint_share_of_each_epochs_batches():
    src = [(i * 7) % 23 + 1 for i in range(317)]
    tgt = [(i * 5) % 19 + 1 for i in range(317)]
    epoch_1 = epoch_batches(src, tgt, 16, seed=3, epoch=1)
    assert epoch_1 == epoch_batches(src, tgt, 16, seed=3, epoch=1)  # (seed, epoch)
    assert epoch_1 != epoch_batches(src, tgt, 16, seed=3, epoch=2)  # set_epoch
    for world_size in (1, 2, 3, 4):
        for batch in epoch_1:
            shares = [rank_share(batch, r, world_size) for r in range(world_size)]
            assert sorted(sum(shares, [])) == sorted(batch)
            assert max(map(len, shares)) - min(map(len, shares)) <= 1
    # Every rank steps on every global batch: the same number of steps.
    assert len(epoch_1) == 20


def test_in_one_process_the_collectives_are_no_ops():
    assert distributed.Environment.read({}) == distributed.Environment()
    assert (distributed.rank(), distributed.world_size()) == (0, 1)
    assert distributed.is_main()
    value = torch.tensor([1.5])
    assert distributed.all_reduce_sum(value) is value
    assert distributed.any_rank(True, False) == (True, False)
    assert distributed.from_main(lambda: 7) == 7
    assert distributed.gather_to_main("x") == ["x"]
    model = torch.nn.Linear(2, 2)
    assert distributed.wrap(model) is model
    distributed.barrier()
    distributed.init()  # no WORLD_SIZE: nothing to join
    assert not distributed.is_initialized()


def test_torchrun_environment_is_read_and_checked():
    env = {"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1",
           "MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29500"}  # fmt: skip
    assert distributed.Environment.read(env) == distributed.Environment(
        rank=3, world_size=4, local_rank=1, master="10.0.0.1:29500"
    )
    with pytest.raises(InputError, match="torchrun"):
        distributed.Environment.read({"WORLD_SIZE": "2"})


def test_nproc_is_taken_out_of_the_command_line_torchrun_gets():
    argv = ["--debug", "train", "c.tsv", "--nproc", "2", "--out", "r", "--nproc=3",
            "--npro", "4", "--set", "train.epochs=2"]  # fmt: skip
    assert without_nproc(argv) == ["--debug", "train", "c.tsv", "--out", "r",
                                    "--set", "train.epochs=2"]  # fmt: skip


def test_nproc_under_torchrun_and_seeds_with_torchrun_are_one_line_errors(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    out = str(tmp_path / "run")
    assert main(["train", CORPUS, "--out", out, "--nproc", "2"]) == 2
    assert "under torchrun leave it out" in capsys.readouterr().err
    assert main(["train", CORPUS, "--out", out, "--seeds", "2"]) == 2
    assert "--seeds trains one run after another" in capsys.readouterr().err
    monkeypatch.delenv("WORLD_SIZE")
    assert main(["train", CORPUS, "--out", out, "--nproc", "0"]) == 2
    assert "--nproc must be at least 1" in capsys.readouterr().err
    assert main(["train", CORPUS, "--out", out, "--nproc", "2", "--seeds", "2"]) == 2
    assert "--seeds trains one run after another" in capsys.readouterr().err


# ---------------------------------------------------------------- torchrun


@pytest.mark.slow
def test_two_processes_step_like_one_with_the_same_global_batch(tmp_path):
    """DDP with the loss over the global token count: the same gradient as
    one process on the whole batch, to float rounding; every rank the same
    parameters and Adam state, bit for bit."""
    script = Path(__file__).with_name("distributed_steps.py")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc-per-node=2", str(script), str(tmp_path)]  # fmt: skip
    done = run(command)
    assert done.returncode == 0, done.stderr
    spec = importlib.util.spec_from_file_location("distributed_steps", script)
    steps = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(steps)
    steps.run_steps(tmp_path)  # the same steps in this one process

    one = torch.load(tmp_path / "rank-0-of-1.pt", weights_only=True)
    rank_0 = torch.load(tmp_path / "rank-0-of-2.pt", weights_only=True)
    rank_1 = torch.load(tmp_path / "rank-1-of-2.pt", weights_only=True)
    for name in rank_0["model"]:
        assert torch.equal(rank_0["model"][name], rank_1["model"][name]), name
    for key, state in rank_0["adam"].items():
        for name, value in state.items():
            assert torch.equal(value, rank_1["adam"][key][name]), (key, name)
    assert rank_0["losses"] == rank_1["losses"]

    gradients = largest_difference(one["first_gradients"], rank_0["first_gradients"])
    assert gradients < 1e-6, gradients
    assert rank_0["losses"] == pytest.approx(one["losses"], rel=1e-6)
    # 6 Adam steps (lr 0.003), one of a batch of 1 pair (rank 1's share empty)
    assert largest_difference(one["model"], rank_0["model"]) < 1e-5


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory):
    """`seqembed train --nproc 2`, watched by an audit hook in each process
    that notes every file it opens for writing, renames or creates."""
    folder = tmp_path_factory.mktemp("two-processes")
    (folder / "hook").mkdir()
    (folder / "hook" / "sitecustomize.py").write_text(AUDIT_HOOK)
    run_dir = folder / "run"
    env = {**ENV, "PYTHONPATH": str(folder / "hook"),
           "AUDIT_WATCH": str(run_dir), "AUDIT_LOG": str(folder)}  # fmt: skip
    started = time.monotonic()
    done = run(seqembed("train", CORPUS, "--out", str(run_dir), "--nproc", "2",
                        *EXACT), env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return run_dir, done.stderr, time.monotonic() - started


AUDIT_HOOK = """
import os, sys
if os.environ.get("RANK") is not None and os.environ.get("AUDIT_WATCH"):
    _watch = os.environ["AUDIT_WATCH"]
    _rank = os.environ["RANK"]
    _log = open(os.path.join(os.environ["AUDIT_LOG"], f"writes-{_rank}.txt"), "a")
    _writing = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

    def _hook(event, args):
        if event == "open":
            path, mode, flags = args
            if not (isinstance(mode, str) and set(mode) & set("wax+")) and not (
                isinstance(flags, int) and flags & _writing
            ):
                return
        elif event in ("os.rename", "os.mkdir", "os.remove", "os.rmdir"):
            path = args[0]
        else:
            return
        if isinstance(path, (str, bytes, os.PathLike)):
            if os.fsdecode(path).startswith(_watch):
                _log.write(f"{event} {os.fsdecode(path)}\\n")
                _log.flush()

    sys.addaudithook(_hook)
"""


@pytest.mark.slow
def test_two_processes_train_like_one_and_only_rank_0_writes(two_process_run, tmp_path):
    run_dir, stderr, _ = two_process_run
    one = tmp_path / "one"
    assert main(["train", CORPUS, "--out", str(one), *EXACT]) == 0

    # Rank 0 wrote the run (checkpoints, metrics, snapshots); rank 1 nothing.
    folder = run_dir.parent
    assert (
        not (folder / "writes-1.txt").exists()
        or not (folder / "writes-1.txt").read_text()
    )
    written = (folder / "writes-0.txt").read_text()
    for name in ("last.pt", "best.pt", "metrics.jsonl", "config.yaml",
                 "vocab.src.tsv", "epoch-0002.pt", "train.tsv"):  # fmt: skip
        assert name in written, name

    def names(folder):  # TensorBoard's file names hold the time and the pid
        return {p.name for p in folder.rglob("*") if "tfevents" not in p.name}

    assert names(run_dir) == names(one)
    # Only rank 0 speaks: one line per epoch, one summary.
    assert stderr.count("epoch   1/2") == 1 and stderr.count("stopped:") == 1

    two_processes, one_process = run_dir / "last.pt", one / "last.pt"
    state = load_checkpoint(two_processes)
    assert len(state["rng_ranks"]) == 2
    single = load_checkpoint(one_process)
    assert state["counters"]["step"] == single["counters"]["step"] == 40
    assert largest_difference(state["model"], single["model"]) < 1e-5
    for a, b in zip(metrics(run_dir), metrics(one), strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
        assert a["valid_loss"] == pytest.approx(b["valid_loss"], rel=1e-4)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_two_loopback_nodes_through_a_c10d_rendezvous(two_process_run, tmp_path):
    """Two launchers, 1 process each, meeting at 127.0.0.1:PORT as two
    machines would: bit for bit the run of 2 processes on one host."""
    run_dir, port, job = tmp_path / "run", free_port(), uuid.uuid4().hex
    nodes = []
    for node_rank in (0, 1):
        command = [sys.executable, "-m", "torch.distributed.run", "--nnodes=2",
                   f"--node-rank={node_rank}", "--nproc-per-node=1",
                   "--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{port}",
                   f"--rdzv-id={job}",
                   "-m", "seqembed", "train", CORPUS, "--out", str(run_dir),
                   *EXACT]  # fmt: skip
        nodes.append(started(command, tmp_path / f"node-{node_rank}.log"))
    with nodes[0] as node_0, nodes[1] as node_1:
        returncodes = [node_0.wait(timeout=300), node_1.wait(timeout=300)]
    logs = [(tmp_path / f"node-{n}.log").read_text() for n in (0, 1)]
    assert returncodes == [0, 0], logs
    assert "distributed: 2 processes (gloo)" in "".join(logs)
    assert_same_state(run_dir / "last.pt", two_process_run[0] / "last.pt")
    assert metrics(run_dir) == metrics(two_process_run[0])


def worker_pids(marker: str) -> dict[int, int]:
    """{rank: pid} of the processes started with ``marker`` in their
    environment (torchrun's workers inherit it; they alone have a RANK)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"TEST_MARKER={marker}".encode() in environ:
            for item in environ:
                if item.startswith(b"RANK="):
                    found[int(item[5:])] = int(entry.name)
    return found


def alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def wait_for_checkpoint(path: Path, process, at_least: int = 1) -> dict:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        try:
            counters = torch.load(path, weights_only=True)["counters"]
            if counters["step"] >= at_least:
                return counters
        except (OSError, RuntimeError, KeyError):
            pass
        time.sleep(0.01)
    raise AssertionError(f"no checkpoint at {path}")


# Dropout and scheduled sampling: both random streams, on every rank.
RANDOM = [*TINY, "--epochs", "2", "--set", "model.dropout=0.2",
          "--set", "train.teacher_forcing=0.8", "--set", "train.batch_size=8",
          "--set", "train.checkpoint_every_steps=3"]  # fmt: skip


@pytest.mark.slow
def test_ctrl_c_stops_every_rank_and_resume_is_bitwise_the_uninterrupted_run(
    tmp_path,
):
    straight = run(torchrun("train", CORPUS, "--out", str(tmp_path / "straight"),
                            *RANDOM))  # fmt: skip
    assert straight.returncode == 0, straight.stderr

    # Ctrl-C at a terminal: SIGINT to the launcher and its processes at once.
    run_dir = tmp_path / "interrupted"
    command = seqembed("train", CORPUS, "--out", str(run_dir), "--nproc", "2",
                       *RANDOM)  # fmt: skip
    with started(command, tmp_path / "interrupted.log") as process:
        wait_for_checkpoint(run_dir / "last.pt", process, at_least=3)
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=120)
    stderr = (tmp_path / "interrupted.log").read_text()
    assert process.returncode == 130, stderr
    assert stderr.count("interrupted; saved") == 1, stderr  # rank 0 speaks
    assert "Traceback" not in stderr
    saved = load_checkpoint(run_dir / "last.pt")["counters"]
    assert 0 < saved["step"] < 80, saved

    resumed = run(torchrun("train", "--out", str(run_dir), "--resume"))
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming at epoch {saved['epoch']}, batch {saved['position']}" in (
        resumed.stderr
    )
    assert_same_state(run_dir / "last.pt", tmp_path / "straight" / "last.pt")
    assert_same_state(run_dir / "best.pt", tmp_path / "straight" / "best.pt")
    assert metrics(run_dir) == metrics(tmp_path / "straight")


@pytest.mark.slow
def test_a_rank_that_dies_stops_the_others(tmp_path):
    marker = uuid.uuid4().hex
    env = {**ENV, "TEST_MARKER": marker}
    run_dir = tmp_path / "run"
    command = seqembed("train", CORPUS, "--out", str(run_dir), "--nproc", "2",
                       *TINY, "--epochs", "50",
                       "--set", "train.checkpoint_every_steps=2")  # fmt: skip
    with started(command, tmp_path / "run.log", env) as process:
        wait_for_checkpoint(run_dir / "last.pt", process)
        pids = worker_pids(marker)
        assert sorted(pids) == [0, 1], pids
        os.kill(pids[1], signal.SIGKILL)
        killed = time.monotonic()
        process.wait(timeout=120)
        stopped_after = time.monotonic() - killed
        rank_0_alive = alive(pids[0])
    stderr = (tmp_path / "run.log").read_text()
    assert process.returncode == 128 + signal.SIGKILL, stderr
    assert "rank 1 was killed by SIGKILL" in stderr
    assert not rank_0_alive
    assert stopped_after < 60, stopped_after
    load_checkpoint(run_dir / "last.pt")  # what rank 0 saved is whole


@pytest.mark.slow
def test_resume_with_another_number_of_processes(two_process_run, tmp_path, caplog):
    """A 2-process run goes on in 1 process (the batches do not depend on the
    number of processes); not bitwise, and it says so."""
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(two_process_run[0], run_dir)
    assert main(["train", "--out", str(run_dir), "--resume", "--epochs", "3"]) == 0
    assert "saved by 2 process(es), this run has 1" in caplog.text
    assert load_checkpoint(run_dir / "last.pt")["counters"]["epoch"] == 4
