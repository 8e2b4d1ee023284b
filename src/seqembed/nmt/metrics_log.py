"""What a run records as it trains: metrics (JSON lines + TensorBoard) and
per-epoch embedding snapshots."""

from __future__ import annotations

import io
import json
from pathlib import Path

import torch

from seqembed.files import atomic_write


class MetricsLog:
    """``metrics.jsonl`` (one JSON object per validation), TensorBoard scalars
    under ``tensorboard/``, and ``embeddings/epoch-NNNN.pt`` snapshots."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self._writer = None

    def write(self, metrics: dict) -> None:
        with open(self.run_dir / "metrics.jsonl", "a", encoding="utf-8") as handle:
            handle.write(json.dumps(metrics, ensure_ascii=False) + "\n")
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.run_dir / "tensorboard"))
        for key, value in metrics.items():
            if key not in ("epoch", "step") and isinstance(value, (int, float)):
                self._writer.add_scalar(key, value, metrics["step"])
        self._writer.flush()

    def drop_after(self, step: int) -> None:
        """Forget the lines of steps after ``step``: on resume from a
        checkpoint, what a crash left after it is done again."""
        path = self.run_dir / "metrics.jsonl"
        if not path.exists():
            return
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        kept = [line for line in lines if _step(line) <= step]
        if len(kept) < len(lines):
            text = "".join(kept).encode("utf-8")
            atomic_write(path, lambda out: out.write(text))

    def write_embeddings(self, epoch: int, model) -> None:
        """Both embedding matrices in float16: small enough to keep every epoch."""
        folder = self.run_dir / "embeddings"
        folder.mkdir(exist_ok=True)
        buffer = io.BytesIO()
        tables = model.embedding_tables()
        snapshot = {
            # on the CPU whatever the model's device: a device-free file
            kind: tables[kind].detach().to("cpu", torch.float16, copy=True)
            for kind in ("src", "tgt")
        }
        torch.save({"epoch": epoch, **snapshot}, buffer)
        path = folder / f"epoch-{epoch:04d}.pt"
        atomic_write(path, lambda out: out.write(buffer.getbuffer()))

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _step(line: str) -> float:
    try:
        return json.loads(line)["step"]
    except (ValueError, KeyError, TypeError):
        return float("inf")  # a line cut short by a crash goes too


def read_metrics(run_dir: Path) -> list[dict]:
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    return [
        json.loads(line)
        for line in path.read_text(encoding="utf-8").splitlines()
        if line
    ]
