"""Checkpoints: the last K kept, damaged files refused or passed over on
resume, a full disk loses nothing, and untrusted files run no code."""

import contextlib
import errno
import json
import os
import pickle
import shutil
import subprocess
import sys

import pytest
import torch
from helpers import FullDisk

from seqembed.cli.demo import SEED_PAIRS, demo_config, seed_pairs
from seqembed.errors import InputError
from seqembed.nmt.checkpoint import (
    describe_checkpoint,
    kept_checkpoints,
    load_checkpoint,
    load_latest_checkpoint,
    save_checkpoint,
)
from seqembed.nmt.training import train


def seed_config(epochs, *extra):
    return demo_config(
        seed_example=True, seed=5, extra=[f"train.epochs={epochs}", *extra]
    )


@pytest.fixture(scope="module")
def five_epochs(tmp_path_factory):
    """The seed example for 5 epochs, keeping the last 3 checkpoints."""
    run = tmp_path_factory.mktemp("five") / "run"
    train(seed_config(5, "train.keep_last=3"), run, seed_pairs())
    return run


def copy_run(run, tmp_path):
    return shutil.copytree(run, tmp_path / "run")


def assert_same_model(a, b):
    a, b = load_checkpoint(a)["model"], load_checkpoint(b)["model"]
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_the_last_k_and_the_best_are_kept(five_epochs):
    names = sorted(p.name for p in five_epochs.glob("*.pt"))
    assert names == ["best.pt", "last-1.pt", "last-2.pt", "last.pt"]
    assert kept_checkpoints(five_epochs) == [
        five_epochs / n for n in ("last.pt", "last-1.pt", "last-2.pt")
    ]
    epochs = [load_checkpoint(p)["counters"]["epoch"] for p in
              kept_checkpoints(five_epochs)]  # fmt: skip
    assert epochs == [6, 5, 4]  # each holds the epoch to start next
    assert not list(five_epochs.glob(".*.part"))


def test_a_truncated_checkpoint_is_a_clear_error(five_epochs, tmp_path):
    broken = tmp_path / "broken.pt"
    data = (five_epochs / "last.pt").read_bytes()
    for size in (0, 100, len(data) // 2, len(data) - 10):
        broken.write_bytes(data[:size])
        with pytest.raises(InputError, match="truncated or corrupt") as info:
            load_checkpoint(broken)
        assert str(info.value).startswith(f"{broken}: ")
        assert "\n" not in str(info.value)
    flipped = bytearray(data)
    flipped[len(data) // 2 : len(data) // 2 + 64] = bytes(64)
    broken.write_bytes(bytes(flipped))
    with pytest.raises(InputError):
        load_checkpoint(broken)


def test_resume_falls_back_past_damaged_checkpoints(five_epochs, tmp_path, caplog):
    run = copy_run(five_epochs, tmp_path)
    good = (run / "last-2.pt").read_bytes()
    (run / "last.pt").write_bytes((run / "last.pt").read_bytes()[:1000])
    (run / "last-1.pt").write_bytes(b"")
    state, path = load_latest_checkpoint(run)
    assert path == run / "last-2.pt" and state["counters"]["epoch"] == 4
    assert "last.pt: cannot read checkpoint" in caplog.text
    assert "renamed it last.pt.bad" in caplog.text
    # The bad ones leave the rotation, kept for a look; the good one is as it was.
    assert (run / "last.pt.bad").exists() and (run / "last-1.pt.bad").exists()
    assert kept_checkpoints(run) == [run / "last-2.pt"]
    assert (run / "last-2.pt").read_bytes() == good


def test_resume_from_an_older_checkpoint_ends_where_the_run_would(
    five_epochs, tmp_path, caplog
):
    run = copy_run(five_epochs, tmp_path)
    (run / "last.pt").write_bytes((run / "last.pt").read_bytes()[:5000])
    train(seed_config(5, "train.keep_last=3"), run, resume=True)
    assert "resuming from" in caplog.text and "last-1.pt" in caplog.text
    assert_same_model(run / "last.pt", five_epochs / "last.pt")
    metrics = (run / "metrics.jsonl").read_text().splitlines()
    assert len(metrics) == 5  # epoch 5 done again, its first line dropped


def test_nothing_left_to_resume_from_is_one_error(five_epochs, tmp_path):
    run = copy_run(five_epochs, tmp_path)
    for path in kept_checkpoints(run):
        path.write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(InputError, match="no checkpoint left to resume from"):
        load_latest_checkpoint(run)
    with pytest.raises(InputError, match="nothing to resume"):
        load_latest_checkpoint(tmp_path / "empty")


# ---------------------------------------------------------------- full disk


def test_a_full_disk_leaves_the_previous_checkpoints(
    five_epochs, tmp_path, monkeypatch
):
    run = copy_run(five_epochs, tmp_path)
    before = {p.name: p.read_bytes() for p in run.glob("*.pt")}
    state = load_checkpoint(run / "last.pt")
    real_fdopen = os.fdopen  # seqembed.files writes through it
    monkeypatch.setattr(
        os, "fdopen", lambda *a, **k: FullDisk(real_fdopen(*a, **k), 4096)
    )
    with pytest.raises(OSError) as info:
        save_checkpoint(state, run / "last.pt", keep=3)
    assert info.value.errno == errno.ENOSPC
    assert info.value.filename == str(run / "last.pt")
    assert "previous checkpoints are as they were" in info.value.strerror
    assert {p.name: p.read_bytes() for p in run.glob("*.pt")} == before
    assert not [p for p in run.iterdir() if p.name.endswith(".part")]


def test_a_full_disk_in_training_is_one_line(
    five_epochs, tmp_path, monkeypatch, capsys
):
    from seqembed.cli.main import main

    run = copy_run(five_epochs, tmp_path)
    before = (run / "last.pt").read_bytes()
    real_fdopen = os.fdopen
    # Room for the small files (config.yaml), not for a checkpoint.
    monkeypatch.setattr(
        os, "fdopen", lambda *a, **k: FullDisk(real_fdopen(*a, **k), 50_000)
    )
    assert main(["train", "--out", str(run), "--resume", "--epochs", "6"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert "Traceback" not in "".join(lines)
    assert lines[-1].startswith(f"seqembed: error: {run / 'last.pt'}: cannot save")
    assert "No space left on device" in lines[-1]
    assert (run / "last.pt").read_bytes() == before


@contextlib.contextmanager
def small_filesystem(folder, size):
    """A tmpfs of ``size`` bytes at ``folder``, if this process may mount one."""
    folder.mkdir()
    if sys.platform != "linux" or os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a small filesystem needs root on Linux")
    mount = ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)]
    if subprocess.run(mount, capture_output=True).returncode != 0:
        pytest.skip("not allowed to mount a tmpfs here")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def resize(folder, size):
    remount = ["mount", "-o", f"remount,size={size}", str(folder)]
    subprocess.run(remount, check=True, capture_output=True)


@pytest.mark.slow
def test_a_real_full_disk_while_training(tmp_path):
    """Train into a tmpfs, shrink it to less than one more checkpoint, go on:
    the save fails with one line, every earlier file is intact, and with room
    again --resume goes on from where it was."""
    from helpers import seqembed

    with small_filesystem(tmp_path / "small", 16 << 20) as small:
        run = small / "run"
        corpus = tmp_path / "corpus.tsv"
        corpus.write_text("".join(f"{en}\t{zh}\n" for zh, en in SEED_PAIRS))
        first = seqembed("train", corpus, "--out", run, "--pretokenized",
                         "--epochs", 1, *TINY)  # fmt: skip
        assert first.returncode == 0, first.stderr
        before = {p.name: p.read_bytes() for p in run.glob("*.pt")}
        stat = os.statvfs(small)
        used = (stat.f_blocks - stat.f_bfree) * stat.f_frsize
        resize(small, used + len(before["last.pt"]) // 2)
        full = seqembed("train", "--out", run, "--resume", "--epochs", 2)
        assert full.returncode == 2 and "Traceback" not in full.stderr
        error = full.stderr.strip().splitlines()[-1]
        assert error.startswith(f"seqembed: error: {run / 'last.pt'}: cannot save")
        assert "No space left on device" in error
        assert {p.name: p.read_bytes() for p in run.glob("*.pt")} == before
        assert not list(run.glob(".*.part"))
        assert load_checkpoint(run / "last.pt")["counters"]["epoch"] == 2
        resize(small, 16 << 20)
        again = seqembed("train", "--out", run, "--resume", "--epochs", 2)
        assert again.returncode == 0, again.stderr
        assert load_checkpoint(run / "last.pt")["counters"]["epoch"] == 3


# A model whose checkpoint (about 0.7 MB) dwarfs the run's small files.
TINY = ["--set", "model.emb_size=32", "--set", "model.hidden_size=64",
        "--set", "vocab.min_freq=1", "--set", "train.keep_last=2"]  # fmt: skip


# ---------------------------------------------------------------- untrusted


class RunsCode:
    """Unpickling this calls os.system: what a malicious checkpoint does."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    zipped, plain = tmp_path / "evil.pt", tmp_path / "evil.pkl"
    payload = {"format": "seqembed-checkpoint", "version": 1, "x": RunsCode(marker)}
    torch.save(payload, zipped)  # torch's zip format
    plain.write_bytes(pickle.dumps(payload))  # a bare pickle
    # torch's zip: unpickled with weights_only, which refuses os.system;
    # a bare pickle: never unpickled at all.
    for path, fragment in ((zipped, "refused to load"), (plain, "bare pickle")):
        with pytest.raises(InputError, match=fragment) as info:
            load_checkpoint(path)
        assert "\n" not in str(info.value)
        assert not marker.exists()
    assert "posix.system" in str(
        pytest.raises(InputError, load_checkpoint, zipped).value
    )
    # The payload is real: an unsafe load does run it.
    subprocess.run(
        [
            sys.executable,
            "-c",
            f"import pickle; pickle.load(open({str(plain)!r}, 'rb'))",
        ],
        check=True,
    )  # noqa: E501
    assert marker.exists()


@pytest.mark.slow
def test_the_cli_refuses_a_malicious_checkpoint(tmp_path):
    from helpers import assert_clean_error, seqembed

    marker = tmp_path / "pwned"
    torch.save({"x": RunsCode(marker)}, tmp_path / "last.pt")
    for command in (["translate", tmp_path, "hi"], ["analyze", tmp_path]):
        assert_clean_error(seqembed(*command), "last.pt", "refused to load")
    assert not marker.exists()


def test_newer_or_unknown_formats_are_refused(five_epochs, tmp_path):
    state = load_checkpoint(five_epochs / "last.pt")
    newer = tmp_path / "newer.pt"
    save_checkpoint({**state, "version": 2}, newer)
    with pytest.raises(InputError, match="version 2 is not supported"):
        load_checkpoint(newer)
    other = tmp_path / "other.pt"
    torch.save({"model": state["model"]}, other)  # a bare state dict
    with pytest.raises(InputError, match="not a seqembed checkpoint"):
        load_checkpoint(other)
    # Neither is "damaged": resume says so instead of passing over it.
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(newer, run / "last.pt")
    with pytest.raises(InputError, match="not supported"):
        load_latest_checkpoint(run)
    assert (run / "last.pt").exists()


def test_a_checkpoint_is_described_by_its_epoch_and_validation_bleu(five_epochs):
    for name in ("last.pt", "last-2.pt"):
        path = five_epochs / name
        state = load_checkpoint(path)
        epoch = state["counters"]["epoch"] - 1
        logged = [
            row
            for row in map(json.loads, (five_epochs / "metrics.jsonl").open())
            if row["step"] == state["counters"]["step"]
        ]
        bleu = logged[-1]["valid_bleu"]
        assert describe_checkpoint(path, state) == (
            f"{path} (epoch {epoch} of 5, valid BLEU {bleu:.1f})"
        )


def test_a_checkpoint_away_from_its_run_or_saved_mid_epoch(five_epochs, tmp_path):
    state = load_checkpoint(five_epochs / "last.pt")
    alone = tmp_path / "copy.pt"  # no metrics.jsonl beside it
    assert describe_checkpoint(alone, state) == f"{alone} (epoch 5 of 5)"
    mid = {**state, "counters": {**state["counters"], "epoch": 3, "position": 7}}
    assert describe_checkpoint(alone, mid) == f"{alone} (epoch 3 of 5, batch 7)"
    fresh = {**state, "counters": {"epoch": 1, "position": 0}}
    assert describe_checkpoint(alone, fresh) == f"{alone} (before the first epoch)"
