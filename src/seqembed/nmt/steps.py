"""One optimiser step and what it is made of: the loss of a batch, gradient
clipping, the learning-rate schedule, and the loss on held-out pairs."""

from __future__ import annotations

import math

import torch
from torch import nn

from seqembed.config import Config
from seqembed.data.batches import Batch, collate, epoch_batches
from seqembed.data.vocab import PAD
from seqembed.errors import InputError
from seqembed.nmt import distributed
from seqembed.nmt.devices import autocast_dtype
from seqembed.nmt.model import Seq2Seq


def run_batch(model: Seq2Seq, batch: Batch, criterion, teacher_forcing: float):
    """Forward pass; returns the summed loss over target tokens."""
    logits, targets = model(
        batch.src, batch.src_lengths, batch.tgt_in, batch.tgt_out, teacher_forcing
    )
    # The loss in float32 even under bf16 autocast: log-softmax over the
    # target vocabulary loses too much in 8 mantissa bits.
    return criterion(logits.float(), targets)


def train_step(
    model,
    batch,
    optimizer,
    criterion,
    config: Config,
    n_tokens: int | None = None,
    weight: float = 1.0,
    scaler=None,
):
    """One optimiser step. Returns (loss, None), or (loss, problem) when the
    loss or the gradient norm is not finite: then the step is skipped and the
    model and the optimiser's state are exactly as they were.

    ``batch`` is a Batch, or a list of (Batch, weight) whose gradients are
    summed into the one step (``train.accumulate``); ``n_tokens`` is then
    the target tokens of all of them. Distributed, a batch is this rank's
    share of a global batch, ``model`` is wrapped in DistributedDataParallel,
    and ``weight`` 0 marks a stand-in for an empty share. The loss returned,
    and whether the step is skipped, are the same on every rank.

    Off the CPU (``device_step``) nothing waits for the device: the loss is
    a tensor there, and the problem a tensor that is True for a skipped step.
    """
    parts = batch if isinstance(batch, list) else [(batch, weight)]
    if parts[0][0].src.device.type != "cpu":
        return device_step(model, parts, optimizer, criterion, config, n_tokens, scaler)
    optimizer.zero_grad(set_to_none=True)
    n_tokens = n_tokens or sum(part.n_tgt_tokens for part, _ in parts)
    ranks = distributed.world_size()
    bf16 = config.train.precision == "bf16"
    value = 0.0
    for part, part_weight in parts:
        with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
            loss_sum = run_batch(model, part, criterion, config.train.teacher_forcing)
        # The mean over the global batch's real target tokens. DDP averages the
        # gradients over ranks, i.e. divides their sum by `ranks`; the factor
        # `ranks` undoes that, so the gradient is that of sum(all ranks' token
        # losses) / n_tokens: 2 processes with B/2 pairs each step like 1 with B.
        loss = loss_sum * (part_weight * ranks) / n_tokens
        value += float(distributed.all_reduce_sum(loss.detach())) / ranks
        if not math.isfinite(value):
            optimizer.zero_grad(set_to_none=True)
            return value, f"loss {value}"
        loss.backward()  # DDP: the gradient all-reduce happens here
    norm = clip_gradients(model, config.train.clip_norm)
    if not math.isfinite(norm):
        optimizer.zero_grad(set_to_none=True)
        return value, f"gradient norm {norm}"
    _optimizer_step(optimizer, config)
    return value, None


def device_step(model, parts, optimizer, criterion, config, n_tokens, scaler):
    """``train_step`` on a GPU: autocast in bf16 or fp16 (``scaler``, a
    GradScaler, for fp16), and no host synchronisation. The fused Adam skips
    a step whose ``found_inf`` is set on the device, so the skip needs no
    ``.item()``; the caller reads the loss and the skips at log intervals."""
    optimizer.zero_grad(set_to_none=True)
    device = parts[0][0].src.device
    if n_tokens is None:
        n_tokens = sum(part.n_tgt_tokens for part, _ in parts)
    ranks = distributed.world_size()
    dtype = autocast_dtype(config.train.precision)
    value = torch.zeros((), device=device)
    for part, part_weight in parts:
        with torch.autocast(device.type, dtype or torch.float32, enabled=bool(dtype)):
            loss_sum = run_batch(model, part, criterion, config.train.teacher_forcing)
        loss = loss_sum * (part_weight * ranks) / n_tokens
        value += distributed.all_reduce_sum(loss.detach()) / ranks
        (scaler.scale(loss) if scaler is not None else loss).backward()
    if scaler is not None:
        scaler.unscale_(optimizer)
    parameters = [p for p in model.parameters() if p.grad is not None]
    norm = nn.utils.get_total_norm([p.grad for p in parameters])
    # clip_grad_norm_'s factor, applied always: a branch on it would wait
    nn.utils.clip_grads_with_norm_(parameters, config.train.clip_norm, norm)
    skipped = ~torch.isfinite(value)
    if scaler is not None:  # an fp16 overflow is the scaler's to handle
        scaler.step(optimizer)
        scaler.update()
        return value, skipped
    skipped = skipped | ~torch.isfinite(norm)
    optimizer.grad_scale, optimizer.found_inf = None, skipped.float()
    try:
        _optimizer_step(optimizer, config)
    finally:
        del optimizer.grad_scale, optimizer.found_inf
    return value, skipped


def _optimizer_step(optimizer, config: Config) -> None:
    try:
        optimizer.step()
    except RuntimeError as error:  # lr 1e38: Adam's step size overflows float32
        raise InputError(
            f"the optimiser step failed ({str(error).splitlines()[0]}); "
            f"is train.lr ({config.train.lr:g}) far too large?"
        ) from error


def clip_gradients(model: nn.Module, max_norm: float) -> float:
    """``clip_grad_norm_`` (same result), but the gradients are only scaled
    when the norm is over the limit: it multiplies all 11M of them by 1.0
    otherwise, ~3% of an input-feeding step on a CPU. Returns the norm."""
    parameters = [p for p in model.parameters() if p.grad is not None]
    norm = nn.utils.get_total_norm([p.grad for p in parameters])
    value = float(norm)
    # clip_grad_norm_'s own factor (a tensor, as there), which it clamps to 1
    if math.isfinite(value) and max_norm / (norm + 1e-6) < 1:
        nn.utils.clip_grads_with_norm_(parameters, max_norm, norm)
    return value


def training_loss(label_smoothing: float) -> nn.CrossEntropyLoss:
    """The summed cross-entropy over real (not padding) target tokens."""
    return nn.CrossEntropyLoss(
        ignore_index=PAD, reduction="sum", label_smoothing=label_smoothing
    )


@torch.no_grad()
def validation_loss(model, src_ids, tgt_ids, batch_size: int) -> float:
    model.eval()
    criterion = nn.CrossEntropyLoss(ignore_index=PAD, reduction="sum")
    lengths = [len(x) for x in src_ids]
    device = next(model.parameters()).device
    losses, tokens = [], 0
    for index in epoch_batches(lengths, lengths, batch_size, 0, 0, shuffle=False):
        batch = collate([src_ids[i] for i in index], [tgt_ids[i] for i in index])
        losses.append(run_batch(model, batch.to(device), criterion, 1.0))
        tokens += batch.n_tgt_tokens
    model.train()
    # read once at the end (a GPU is not waited for per batch), summed in
    # float64 in batch order as ever
    total = sum(torch.stack(losses).tolist()) if losses else 0.0
    return total / max(tokens, 1)


def make_scheduler(optimizer, config: Config):
    train = config.train
    if train.lr_schedule == "plateau":
        mode = "max" if train.early_stopping_metric == "bleu" else "min"
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer,
            mode=mode,
            factor=train.lr_decay,
            patience=train.lr_patience,
            min_lr=train.min_lr,
        )
    if train.lr_schedule == "step":
        return torch.optim.lr_scheduler.StepLR(
            optimizer, step_size=train.lr_step_epochs, gamma=train.lr_decay
        )
    return None


def step_scheduler(scheduler, watched: float) -> None:
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        scheduler.step(watched)
    elif scheduler is not None:
        scheduler.step()
