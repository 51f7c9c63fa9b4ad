"""Run logs: JSONL per step, TensorBoard scalars, a rich progress bar or plain progress lines,
and a loss-curve PNG."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any, TextIO

#: Held-out metrics logged with ``val_`` in front (``val/`` in TensorBoard): the overall
#: hard-negative accuracies and the in-batch R@1 of :func:`geoforge_train.evaluate.evaluate`.
VAL_KEYS = ("image_to_caption", "caption_to_image", "r1_image_to_text", "r1_text_to_image")


class RunLog:
    """Logs of one training run, written on rank 0 only (``enabled``).

    ``out/log.jsonl`` gets one JSON object per step (step, epoch, loss, lr, logit_scale,
    samples_per_s, step_seconds, caption_duplicates, same_token_negatives), ``lr`` being the
    rate that step used, ``step_seconds`` the step's wall time (data wait included, held-out
    evaluation and checkpoints not; the first step of a run also holds ``torch.compile``'s
    compilation and warm-up), ``samples_per_s`` the throughput of the run's steps after its
    first (of the first alone at the first), ``caption_duplicates`` the share of the step's
    global batch whose caption another sample of the batch shares (the loss does not treat
    such pairs as negatives) and ``same_token_negatives`` the caption negatives masked because
    the tokenizer made them equal to their positive. The last step of each epoch (or of the
    run) also gets ``epoch_caption_duplicates`` (the mean of ``caption_duplicates`` over the
    epoch's steps) and ``epoch_same_token_negatives`` (their sum), and the same figures go to
    stderr as one plain line. Rows of an earlier run past ``start`` (the step a resumed run
    starts from, 0 for a fresh run) are dropped first, so the file holds each step once, and
    the kept rows count towards their epoch's figures. ``out/tensorboard/`` gets the per-step
    scalars when the ``tensorboard`` package is installed; ``close`` writes ``out/loss.png``.

    A step evaluated on held-out data also gets ``val_image_to_caption``,
    ``val_caption_to_image``, ``val_r1_image_to_text``, ``val_r1_text_to_image`` (``null``
    where the held-out corpus has no negative of a direction) and ``val_samples``, in TensorBoard
    as ``val/...``, and a plain line in ``lines``.

    Progress shows as a rich bar on stderr when both stderr and ``lines`` are terminals;
    otherwise (nohup, SLURM, a pipe) ``lines`` gets one plain line every ``log_every`` steps
    and at the last step, as open_clip logs (0: no lines).
    """

    def __init__(
        self,
        out: Path,
        enabled: bool,
        total: int,
        start: int = 0,
        log_every: int = 0,
        lines: TextIO | None = None,
    ) -> None:
        self.out, self.enabled, self.total = out, enabled, total
        self.warned: set[str] = set()
        self.log_every, self.lines = log_every, lines
        self.file = None
        self.tb: Any = None
        self.progress: Any = None
        #: epoch → [sum of caption_duplicates, steps, sum of same_token_negatives]
        self.epochs: dict[int, list[float]] = defaultdict(lambda: [0.0, 0, 0])
        if not enabled:
            return
        path = out / "log.jsonl"
        kept = []
        if path.is_file():  # a resumed run replays the steps after its checkpoint
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                    if int(row["step"]) <= start:
                        kept.append(line + "\n")
                        self._count(int(row["epoch"]), row["caption_duplicates"], row["same_token_negatives"])
                except (ValueError, KeyError, TypeError):
                    continue
        path.write_text("".join(kept), encoding="utf-8")
        self.file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(out / "tensorboard"))
        except ImportError:
            self.tb = None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        console = Console(stderr=True)
        self.interactive = console.is_terminal and lines is not None and lines.isatty()
        if self.interactive or lines is None:
            self.log_every = 0
        self.progress = Progress(
            TextColumn("training"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeRemainingColumn(),
            console=console,
            disable=not self.interactive,
        )
        self.progress.start()
        self.task = self.progress.add_task("train", total=total, completed=start, info="")

    def warn(self, message: str) -> None:
        """One ``warning: message`` line on stderr (above the progress bar in a terminal), as
        the epoch figures go, once per run however often it is said (a held-out corpus's
        skipped shard is said at every evaluation); nothing on ranks other than 0."""
        if self.enabled and message not in self.warned:
            self.warned.add(message)
            self.progress.console.print(f"warning: {message}", highlight=False, markup=False, soft_wrap=True)

    def _count(self, epoch: int, duplicates: float, same_tokens: int) -> None:
        totals = self.epochs[epoch]
        totals[0] += duplicates
        totals[1] += 1
        totals[2] += same_tokens

    def step(
        self,
        step: int,
        epoch: int,
        loss: float,
        lr: float,
        scale: float,
        rate: float,
        duplicates: float,
        same_tokens: int,
        epoch_end: bool,
        val: dict[str, Any] | None = None,
        seconds: float | None = None,
    ) -> None:
        """Record one optimiser step; ``epoch_end`` when it is the last of its epoch or run;
        ``val``: held-out metrics computed after it (:func:`geoforge_train.evaluate.evaluate`);
        ``seconds``: its wall time (``step_seconds``, left out when None)."""
        if not self.enabled:
            return
        row: dict[str, float | None] = {
            "step": step + 1,
            "epoch": epoch,
            "loss": loss,
            "lr": lr,
            "logit_scale": scale,
            "samples_per_s": round(rate, 2),
            **({} if seconds is None else {"step_seconds": round(seconds, 4)}),
            "caption_duplicates": duplicates,
            "same_token_negatives": same_tokens,
        }
        self._count(epoch, duplicates, same_tokens)
        if epoch_end:
            total, steps, same = self.epochs.pop(epoch)
            row["epoch_caption_duplicates"] = total / steps
            row["epoch_same_token_negatives"] = int(same)
            self.progress.console.print(
                f"epoch {epoch}: {total / steps:.1%} of samples per batch shared their caption with "
                f"another sample (not negatives of each other); {int(same)} caption negatives "
                "token-identical to their positive after truncation (masked)",
                highlight=False,
                markup=False,
                soft_wrap=True,
            )
        if val is not None:
            for key in VAL_KEYS:
                row[f"val_{key}"] = val[key]["overall"] if isinstance(val[key], dict) else val[key]
            row["val_samples"] = val["samples"]
        self.file.write(json.dumps(row) + "\n")  # type: ignore[union-attr]
        self.file.flush()  # type: ignore[union-attr]
        if self.tb is not None:
            for key in (
                "loss",
                "lr",
                "logit_scale",
                "samples_per_s",
                "step_seconds",
                "caption_duplicates",
                "same_token_negatives",
            ):
                if key in row:
                    self.tb.add_scalar(f"train/{key}", row[key], step + 1)
            for key in VAL_KEYS:
                if row.get(f"val_{key}") is not None:
                    self.tb.add_scalar(f"val/{key}", row[f"val_{key}"], step + 1)
        self.progress.update(self.task, advance=1, info=f"loss {loss:.4f}  {rate:.1f} samples/s")
        if self.log_every and ((step + 1) % self.log_every == 0 or step + 1 == self.total):
            self._line(
                f"step {step + 1}/{self.total} ({100 * (step + 1) / self.total:.0f}%) epoch {epoch} "
                f"loss {loss:.4f} lr {lr:.3g} logit_scale {scale:.2f} {rate:.1f} samples/s"
            )
        if val is not None and self.lines is not None:
            shares = {key: row[f"val_{key}"] for key in VAL_KEYS}
            scores = ", ".join(f"{k} {'n/a' if v is None else f'{100 * v:.1f}%'}" for k, v in shares.items())
            self._line(f"val at step {step + 1} ({val['samples']} held-out samples): {scores}")

    def _line(self, text: str) -> None:
        """One plain line: above the progress bar in a terminal, else to ``lines``, flushed (a
        file or pipe buffers it otherwise)."""
        if self.interactive:
            self.progress.console.print(text, highlight=False, markup=False, soft_wrap=True)
            return
        self.lines.write(text + "\n")  # type: ignore[union-attr]
        self.lines.flush()  # type: ignore[union-attr]

    def close(self, history: list[float]) -> None:
        """Flush everything and draw the loss curve."""
        if not self.enabled:
            return
        self.progress.stop()
        self.file.close()  # type: ignore[union-attr]
        if self.tb is not None:
            self.tb.close()
        if history:
            loss_curve(history, self.out / "loss.png")


def loss_curve(history: list[float], path: Path) -> None:
    """A PNG of the training loss per step (matplotlib, Agg, no pyplot state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot(range(1, len(history) + 1), history, lw=1)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
