"""--device on every command that computes with a model, as a user runs
the CLI on this machine (no GPU in CI: the CUDA answers are the one-line
errors; tests/nmt/test_cuda.py covers a real GPU)."""

import pytest
import torch
from helpers import assert_clean_error, seqembed

import seqembed as api
from seqembed.cli.main import build_parser

DEVICE_COMMANDS = {
    "train",
    "translate",
    "evaluate",
    "analyze",
    "neighbours",
    "report",
    "attention",
    "serve",
}
no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="this host has CUDA")


def test_every_command_that_computes_with_a_model_takes_device():
    commands = build_parser().commands.choices
    for name in DEVICE_COMMANDS:
        flags = {s for a in commands[name]._actions for s in a.option_strings}
        assert "--device" in flags, name
        (device,) = [
            a for a in commands[name]._actions if "--device" in a.option_strings
        ]
        assert "cuda:N" in device.help and "auto" in device.help, name


@no_cuda
@pytest.mark.slow
def test_a_device_that_is_not_here_is_one_line_on_each_command(builtin_run, tmp_path):
    corpus = tmp_path / "pairs.tsv"
    corpus.write_text("I love you.\t我爱你。\n" * 20, encoding="utf-8")
    cases = [
        ("translate", builtin_run, "--device", "cuda", "你好"),
        ("attention", builtin_run, "你好", "--device", "cuda:1"),
        ("neighbours", builtin_run, "好", "--device", "cuda"),
        ("train", corpus, "--out-dir", tmp_path / "run", "--device", "cuda"),
    ]
    for args in cases:
        result = seqembed(*args)
        assert_clean_error(result, "no CUDA device here", "cpu")
    assert not (tmp_path / "run" / "last.pt").exists()
    mac = seqembed("translate", builtin_run, "--device", "mps", "你好")
    assert_clean_error(mac, "--device mps", "macOS")
    test = builtin_run / "data" / "test.tsv"
    typo = seqembed("evaluate", builtin_run, test, "--device", "gpu")
    assert_clean_error(typo, "--device must be one of", "'gpu'")


@pytest.mark.slow
def test_device_cpu_translates_as_the_default_does(builtin_run):
    default = seqembed("translate", builtin_run, "今天天气很好", "我爱你。")
    on_cpu = seqembed(
        "translate", builtin_run, "--device", "cpu", "今天天气很好", "我爱你。"
    )
    assert default.returncode == on_cpu.returncode == 0, default.stderr + on_cpu.stderr
    assert on_cpu.stdout == default.stdout
    assert len(on_cpu.stdout.splitlines()) == 2


@no_cuda
def test_the_api_takes_the_same_devices(builtin_run):
    run = api.load_run(builtin_run, device="cpu")
    assert run.translator.device == torch.device("cpu")
    assert run.translate("你好") == api.load_run(builtin_run).translate("你好")
    with pytest.raises(api.InputError, match="no CUDA device here"):
        api.load_run(builtin_run, device="cuda")
