"""Weakly-supervised slide classification: gated-attention MIL over region embeddings.

A lighter stand-in for HIPT's slide-level transformer (ViT_WSI-4K): each slide is a bag
of its region embeddings, pooled by gated attention [0] and classified by a linear layer.
Per split it is trained from scratch on ``train`` (one slide per step, class-balanced
sampling with replacement, cross-entropy, Adam lr 2e-4, weight decay 1e-5, 20 epochs, as
in HIPT's weakly-supervised runs), the epoch with the best val AUC (ties: lower val loss)
is kept, and that model scores ``test``.

- [0] Ilse, Tomczak, Welling. Attention-based Deep Multiple Instance Learning. ICML 2018.
  https://arxiv.org/abs/1802.04712

Letters: N = regions of one slide, D = embedding size, H = hidden size, K = classes.
"""
from __future__ import annotations

import copy
import math
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import WeightedRandomSampler
from tqdm import tqdm

from slpd_plugin.utils.progress import progress_bar

from ..data.cohort import select_parts
from ..data.embeddings import index_embedding_dir, load_region_embeddings
from ..data.fractions import TrainFraction, parse_fraction
from ..data.splits import Split
from ..stats.metrics import auc_score
from .linear_knn import ProtocolResult, class_names_or_numbers, fold_result

__all__ = ['GatedAttentionMIL', 'MILConfig', 'MIL_MODELS', 'TransformerMIL', 'build_mil_model',
           'evaluate_mil', 'load_bags', 'one_thread']


class GatedAttentionMIL(nn.Module):
    """Gated-attention pooling of region embeddings, then a linear classifier.

    ``h = ReLU(W x)``; ``a = w^T (tanh(V h) * sigmoid(U h))``; ``A = softmax_N(a)``;
    ``logits = C (sum_n A_n h_n)``.

    Args:
        in_dim: D.
        num_classes: K.
        hidden_dim: H. Defaults to 256.
        attn_dim: Size of the attention branches. Defaults to 128.
        dropout: Dropout after the first layer and on the attention branches.
            Defaults to 0.25.
    """

    def __init__(self, in_dim: int, num_classes: int, hidden_dim: int = 256,
                 attn_dim: int = 128, dropout: float = 0.25) -> None:
        super().__init__()
        self.embed = nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.ReLU(),
                                   nn.Dropout(dropout))
        self.attn_v = nn.Sequential(nn.Linear(hidden_dim, attn_dim), nn.Tanh(),
                                    nn.Dropout(dropout))
        self.attn_u = nn.Sequential(nn.Linear(hidden_dim, attn_dim), nn.Sigmoid(),
                                    nn.Dropout(dropout))
        self.attn_w = nn.Linear(attn_dim, 1)
        self.classifier = nn.Linear(hidden_dim, num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Classify one bag.

        Args:
            x: Region embeddings of shape (N, D).

        Returns:
            Logits of shape (K,) and attention weights of shape (N,) summing to 1.
        """
        h = self.embed(x)
        scores = self.attn_w(self.attn_v(h) * self.attn_u(h)).squeeze(-1)
        attention = torch.softmax(scores, dim=0)
        return self.classifier(attention @ h), attention


class _BagTransformer(nn.Module):
    """Transformer layers over the regions of one bag, ``(N, H) -> (N, H)``."""

    def __init__(self, dim: int, depth: int, heads: int, dropout: float) -> None:
        super().__init__()
        layer = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=dim, dropout=dropout,
                                           activation='relu', batch_first=True)
        self.layers = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.layers(h[None])[0]


class TransformerMIL(GatedAttentionMIL):
    """HIPT-style slide transformer over region embeddings.

    Region embeddings -> 2 transformer layers -> gated-attention pooling -> linear
    classifier (HIPT's ViT_WSI-4K head, written from its description: hidden 192,
    3 heads, dropout 0.25).

    Args:
        in_dim: D.
        num_classes: K.
        hidden_dim: H, the width of the transformer layers; a multiple of ``heads``.
            Defaults to 192.
        attn_dim: Size of the attention branches. Defaults to 192.
        dropout: Dropout. Defaults to 0.25.
        depth: Transformer layers. Defaults to 2.
        heads: Attention heads. Defaults to 3.

    Raises:
        ValueError: If ``hidden_dim`` is not a multiple of ``heads``.
    """

    def __init__(self, in_dim: int, num_classes: int, hidden_dim: int = 192,
                 attn_dim: int = 192, dropout: float = 0.25, depth: int = 2,
                 heads: int = 3) -> None:
        if hidden_dim % heads:
            raise ValueError(f'TransformerMIL: hidden_dim={hidden_dim} is not a multiple of '
                             f'heads={heads}')
        super().__init__(in_dim, num_classes, hidden_dim, attn_dim, dropout)
        self.embed = nn.Sequential(self.embed, _BagTransformer(hidden_dim, depth, heads,
                                                               dropout))


#: MILConfig.model -> the model class.
MIL_MODELS = {'abmil': GatedAttentionMIL, 'transformer': TransformerMIL}


@dataclass
class MILConfig:
    """Training settings of the MIL protocol (defaults follow HIPT's runs).

    Attributes:
        epochs: Passes over the (class-balanced) training part. Defaults to 20.
        lr: Adam learning rate. Defaults to 2e-4.
        weight_decay: Adam weight decay. Defaults to 1e-5.
        hidden_dim: H. Defaults to None: the model's default (abmil 256, transformer 192).
        attn_dim: Attention size. Defaults to None: the model's default (abmil 128,
            transformer 192).
        dropout: Dropout. Defaults to 0.25.
        device: Torch device. Defaults to ``'cpu'``.
        model: A key of :data:`MIL_MODELS`: ``'abmil'`` (gated-attention MIL) or
            ``'transformer'`` (HIPT-style slide transformer). Defaults to 'abmil'.
        progress: Show a progress bar of splits x epochs (stderr). Defaults to False.

    Raises:
        ValueError: For a ``model`` that is not a key of :data:`MIL_MODELS`.
    """

    epochs: int = 20
    lr: float = 2e-4
    weight_decay: float = 1e-5
    hidden_dim: int | None = None
    attn_dim: int | None = None
    dropout: float = 0.25
    device: str = 'cpu'
    model: str = 'abmil'
    progress: bool = False

    def __post_init__(self) -> None:
        if self.model not in MIL_MODELS:
            raise ValueError(f'MIL model must be one of {sorted(MIL_MODELS)}, got '
                             f'{self.model!r}')


def build_mil_model(cfg: MILConfig, in_dim: int, num_outputs: int) -> GatedAttentionMIL:
    """Build the MIL model ``cfg.model`` on ``cfg.device``.

    Args:
        cfg: Model name, dropout, device, and ``hidden_dim`` / ``attn_dim`` (the model's
            own defaults where None).
        in_dim: D, the region embedding size.
        num_outputs: Logits per bag: K classes, or B survival bins.

    Returns:
        A freshly initialised model mapping a bag (N, D) to ``(logits (num_outputs,),
        attention (N,))``.
    """
    sizes = {name: value for name, value in (('hidden_dim', cfg.hidden_dim),
                                             ('attn_dim', cfg.attn_dim)) if value is not None}
    return MIL_MODELS[cfg.model](in_dim, num_outputs, dropout=cfg.dropout,
                                 **sizes).to(cfg.device)


def epoch_bar(cfg: MILConfig, num_splits: int, desc: str) -> tqdm:
    """A progress bar of ``num_splits x cfg.epochs`` epochs.

    It is disabled unless ``cfg.progress``.
    """
    return progress_bar(total=num_splits * cfg.epochs, desc=desc, unit='epoch',
                        disable=not cfg.progress)


@contextmanager
def one_thread() -> Iterator[None]:
    """Run the block with one intra-op torch thread, restoring the count afterwards.

    Per-bag tensors are tiny, and on a busy CPU extra threads only spin (measured: 200 ms
    vs 9 ms per step with 2 threads vs 1 on a loaded 2-core machine).
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def load_bags(emb_dir: str | Path, slide_ids: Iterable[str]) -> dict[str, torch.Tensor]:
    """Load the (N, D) region embeddings of the given slides that have a file."""
    index = index_embedding_dir(emb_dir)
    return {s: load_region_embeddings(index[s]) for s in sorted(set(slide_ids)) if s in index}


@torch.no_grad()
def _score(model: GatedAttentionMIL, bags: Sequence[torch.Tensor], y: np.ndarray,
           device: str) -> tuple[np.ndarray, np.ndarray, float]:
    """Predictions (M,), probabilities (M, K) and mean cross-entropy."""
    model.eval()
    k = model.classifier.out_features
    if not bags:
        return np.zeros(0, int), np.zeros((0, k)), math.nan
    logits = torch.stack([model(b.to(device))[0] for b in bags]).cpu()
    loss = nn.functional.cross_entropy(logits, torch.as_tensor(y)).item()
    proba = torch.softmax(logits, dim=1).numpy().astype(np.float64)
    return proba.argmax(1), proba, loss


def _train_split(bags: Mapping[str, torch.Tensor], labels: Mapping[str, int],
                 train: list[str], val: list[str], num_classes: int, cfg: MILConfig,
                 generator: torch.Generator, bar: tqdm) -> tuple[GatedAttentionMIL, int]:
    dim = next(iter(bags.values())).shape[1]
    model = build_mil_model(cfg, dim, num_classes)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    y_tr = np.array([labels[s] for s in train])
    counts = np.bincount(y_tr, minlength=num_classes)
    weights = torch.as_tensor(1.0 / counts[y_tr], dtype=torch.double)
    # torch annotates ``weights`` as Sequence[float]; it takes a tensor (torch.as_tensor).
    sampler = WeightedRandomSampler(weights, len(train),  # type: ignore[arg-type]
                                    replacement=True, generator=generator)
    val_bags = [bags[s] for s in val]
    y_val = np.array([labels[s] for s in val], dtype=int)

    best_key, best_state, best_epoch = None, None, cfg.epochs
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        for i in sampler:
            logits, _ = model(bags[train[i]].to(cfg.device))
            target = torch.tensor([y_tr[i]], device=cfg.device)
            loss = nn.functional.cross_entropy(logits[None], target)
            opt.zero_grad()
            loss.backward()
            opt.step()
        bar.update()
        if not val:
            continue
        _, proba, val_loss = _score(model, val_bags, y_val, cfg.device)
        auc = auc_score(y_val, proba)
        key = (-math.inf if math.isnan(auc) else auc, -val_loss)
        if best_key is None or key > best_key:  # ties keep the earlier epoch
            best_key, best_epoch = key, epoch
            best_state = copy.deepcopy(model.state_dict())
    if best_state is not None:
        model.load_state_dict(best_state)
    return model, best_epoch


def evaluate_mil(bags: Mapping[str, torch.Tensor],
                 labels: Mapping[str, int],
                 splits: Sequence[Split],
                 num_classes: int,
                 class_names: Sequence[str] | None = None,
                 fraction: TrainFraction | str | float = '1.0',
                 seed: int = 0,
                 config: MILConfig | None = None) -> ProtocolResult:
    """Train and score the MIL model (``config.model``) on every split.

    Split ``k`` draws its training subsample with ``np.random.default_rng([seed, k])``
    and seeds torch with ``seed * 1000 + k`` inside a forked RNG (the global torch RNG is
    left as it was on CPU).

    Args:
        bags: Slide id -> region embeddings of shape (N, D).
        labels: Slide id -> label in ``[0, num_classes)``.
        splits: The splits.
        num_classes: K.
        class_names: Names for messages. Defaults to None.
        fraction: Training fraction. Defaults to ``'1.0'``.
        seed: Seed. Defaults to 0.
        config: Training settings. Defaults to None (``MILConfig()``).

    Returns:
        Per-split metrics (``best_epoch`` = the epoch kept) and their summary.

    Raises:
        ValueError: If ``bags`` is empty or a split cannot be evaluated.
    """
    if not bags:
        raise ValueError('no slide embeddings to train the MIL model on')
    cfg = config or MILConfig()
    fraction = parse_fraction(fraction)
    names = class_names_or_numbers(class_names, num_classes)
    results = []
    bar = epoch_bar(cfg, len(splits), 'mil')
    for split in splits:
        train, val, test = select_parts(split, labels, bags, fraction, seed)
        with torch.random.fork_rng(devices=[]), one_thread():
            torch.manual_seed(seed * 1000 + split.fold)
            generator = torch.Generator().manual_seed(seed * 1000 + split.fold)
            model, best_epoch = _train_split(bags, labels, train, val, num_classes, cfg,
                                             generator, bar)
            y_val = np.array([labels[s] for s in val], dtype=int)
            y_te = np.array([labels[s] for s in test])
            pred_val, proba_val, _ = _score(model, [bags[s] for s in val], y_val,
                                            cfg.device)
            pred_te, proba_te, _ = _score(model, [bags[s] for s in test], y_te, cfg.device)
        result = fold_result(split.fold, names, np.array([labels[s] for s in train]),
                             (y_val, pred_val, proba_val), test, (y_te, pred_te, proba_te))
        result.best_epoch = best_epoch
        results.append(result)
    bar.close()
    return ProtocolResult('mil', fraction, seed, names, results)
