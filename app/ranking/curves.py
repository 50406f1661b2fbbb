"""Loss curves of a TrainingReport as one self-contained SVG string (no plotting library, no external assets)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape
from typing import Protocol

import numpy as np

from app.ranking.training import EpochLoss, TrainingReport

WIDTH, HEIGHT = 640, 360
LEFT, RIGHT, TOP, BOTTOM = 56, 170, 40, 44  # the right margin holds the legend
TRAIN_COLOR, VAL_COLOR, OTHER_COLOR, BEST_COLOR = "#1f77b4", "#d62728", "#999999", "#2ca02c"

Scale = Callable[[float], float]  # data coordinate → SVG pixel


class Curve(Protocol):
    """One trial's losses: the ranker's Trial, or any other training run with epochs and a best epoch."""

    @property
    def epochs(self) -> Sequence[EpochLoss]: ...

    @property
    def best_epoch(self) -> int: ...


def loss_curves_svg(report: TrainingReport) -> str:
    """The ranker's curves: its trials, the chosen one by its hyper-parameters."""
    chosen = report.chosen_trial
    title = f"Loss per epoch — chosen alpha={chosen.alpha:g}, class_weight={chosen.class_weight}"
    return curves_svg(report.trials, report.chosen, title, "log-loss")


def curves_svg(trials: Sequence[Curve], chosen_index: int, title: str, y_label: str) -> str:
    """Train and val loss per epoch of the chosen trial, other trials' val loss faint, best epoch marked."""
    chosen = trials[chosen_index]
    others = [t for i, t in enumerate(trials) if i != chosen_index]
    n_epochs = max(len(t.epochs) for t in trials)
    values = [e.train_loss for e in chosen.epochs] + [e.val_loss for t in trials for e in t.epochs]
    lo, hi = min(values), max(values)
    pad = 0.05 * (hi - lo) or 0.05  # a flat curve still gets a visible band
    lo, hi = max(lo - pad, 0.0) if lo >= 0 else lo - pad, hi + pad  # a loss never below 0: nor is its axis

    def x(epoch: float) -> float:
        return LEFT + (epoch - 1) / max(n_epochs - 1, 1) * (WIDTH - LEFT - RIGHT)

    def y(loss: float) -> float:
        return HEIGHT - BOTTOM - (loss - lo) / (hi - lo) * (HEIGHT - TOP - BOTTOM)

    def polyline(trial: Curve, attr: str, color: str, css: str, extra: str = "") -> str:
        points = " ".join(f"{x(e.epoch):.1f},{y(getattr(e, attr)):.1f}" for e in trial.epochs)
        return f'<polyline class="{css}" points="{points}" fill="none" stroke="{color}" {extra}/>'

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="11">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        f'<text x="{WIDTH / 2}" y="22" text-anchor="middle" font-size="13">{escape(title)}</text>',
        *_axes(x, y, n_epochs, lo, hi, y_label),
        # Faint first, so the chosen trial is drawn on top of them.
        *(polyline(t, "val_loss", OTHER_COLOR, "other-val", 'stroke-opacity="0.45"') for t in others),
        polyline(chosen, "train_loss", TRAIN_COLOR, "chosen-train", 'stroke-width="2"'),
        polyline(chosen, "val_loss", VAL_COLOR, "chosen-val", 'stroke-width="2"'),
        f'<line class="best-epoch" x1="{x(chosen.best_epoch):.1f}" y1="{TOP}" x2="{x(chosen.best_epoch):.1f}" '
        f'y2="{HEIGHT - BOTTOM}" stroke="{BEST_COLOR}" stroke-dasharray="4 3"/>',
        *_legend(chosen.best_epoch),
        "</svg>",
    ]
    return "\n".join(parts)


def _axes(x: Scale, y: Scale, n_epochs: int, lo: float, hi: float, y_label: str) -> list[str]:
    x0, x1, y0, y1 = LEFT, WIDTH - RIGHT, HEIGHT - BOTTOM, TOP
    out = [
        f'<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y0}" stroke="black"/>',
        f'<line x1="{x0}" y1="{y0}" x2="{x0}" y2="{y1}" stroke="black"/>',
        f'<text x="{(x0 + x1) / 2}" y="{HEIGHT - 8}" text-anchor="middle">epoch</text>',
        f'<text x="14" y="{(y0 + y1) / 2}" text-anchor="middle" '
        f'transform="rotate(-90 14 {(y0 + y1) / 2})">{escape(y_label)}</text>',
    ]
    for epoch in range(1, n_epochs + 1, max(1, math.ceil((n_epochs - 1) / 5))):
        out.append(f'<line x1="{x(epoch):.1f}" y1="{y0}" x2="{x(epoch):.1f}" y2="{y0 + 4}" stroke="black"/>')
        out.append(f'<text x="{x(epoch):.1f}" y="{y0 + 16}" text-anchor="middle">{epoch}</text>')
    for loss in np.linspace(lo, hi, 5):
        out.append(f'<line x1="{x0 - 4}" y1="{y(loss):.1f}" x2="{x0}" y2="{y(loss):.1f}" stroke="black"/>')
        out.append(f'<text x="{x0 - 6}" y="{y(loss) + 4:.1f}" text-anchor="end">{loss:.3f}</text>')
    return out


def _legend(best_epoch: int) -> list[str]:
    entries = [
        (TRAIN_COLOR, "train (chosen)", ""),
        (VAL_COLOR, "val (chosen)", ""),
        (OTHER_COLOR, "val (other trials)", ' stroke-opacity="0.45"'),
        (BEST_COLOR, f"best epoch ({best_epoch})", ' stroke-dasharray="4 3"'),
    ]
    left, out = WIDTH - RIGHT + 12, []
    for i, (color, label, extra) in enumerate(entries):
        top = TOP + 8 + 18 * i
        line = f'x1="{left}" y1="{top}" x2="{left + 20}" y2="{top}" stroke="{color}" stroke-width="2"{extra}'
        out.append(f"<line {line}/>")
        out.append(f'<text x="{left + 26}" y="{top + 4}">{escape(label)}</text>')
    return out
