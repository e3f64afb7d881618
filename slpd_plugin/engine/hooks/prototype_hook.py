"""Refresh SLPD's prototype bank at the start of every epoch after warm-up.

See docs/prototypes.md and the SLPD paper (arXiv 2307.10696).

Per refresh, on ``W`` ranks (world size, all nodes):

1. every rank embeds its contiguous shard of the ``N`` regions with the teacher
   (:func:`~slpd_plugin.checkpoints.embed.embed_grids`: eval mode, centre 14x14 view)
   and the shards are all-gathered: every rank holds (N, D)
   (or, with ``source='memory'``, the teacher embeddings the training steps of the
   previous epoch computed anyway are reused, and only regions no step saw are embedded);
2. the ``S`` slides are split into ``W`` shards; each rank clusters its shard
   (``cluster_slides``), and the prototypes are all-gathered: (S, K, D) everywhere;
3. every rank runs the same deterministic ``finish_bank`` (assignments, neighbours,
   matched prototypes) on the same inputs, so the bank is identical on all ranks.

The bank is saved in checkpoints and restored on resume.

Over window views (a training dataset with a ``prototype_dataset``, such as
:class:`~slpd_plugin.datasets.lattice.SlideWindowViewsDataset`), the regions embedded and
clustered are that fixed set of windows, embedded whole, and the prototype head assigns
each training sample from the teacher (docs/algorithm.md, "SLPD over windows").
"""
from __future__ import annotations

import numpy as np
import torch
from mmengine.dist import all_gather, all_reduce, get_dist_info
from mmengine.hooks import Hook
from torch.utils.data import DataLoader, Subset

from slpd_plugin.checkpoints.embed import embed_grids
from slpd_plugin.prototypes import PrototypeBank, cluster_slides, finish_bank
from slpd_plugin.prototypes.bank import CKPT_KEY, bank_checkpoint_entry, bank_from_checkpoint
from slpd_plugin.prototypes.build import ASSIGNMENTS
from slpd_plugin.prototypes.churn import assignment_churn
from slpd_plugin.prototypes.faiss_backend import describe_refresh
from slpd_plugin.prototypes.settings import REFRESH_DEFAULTS as DEFAULTS
from slpd_plugin.registry import HOOKS
from slpd_plugin.utils.model import unwrap
from slpd_plugin.utils.progress import progress_bar

CLS_WITH_PROTOTYPE_HEAD = (
    "prototypes of backbone CLS embeddings cannot be distilled: the prototype head turns "
    "each prototype into a target with the teacher's last layer, which takes the head's "
    "bottleneck z (model.head.bottleneck_dims), not the backbone's embed_dims. Use "
    "embedding='z' (the paper's and SLPD's choice; SLPD's own 'backbone' option fails the "
    "same way), or remove model.prototype_head to build 'cls' banks for inspection only")


def gather_rows(local: torch.Tensor) -> torch.Tensor:
    """Concatenate, in rank order, row blocks of possibly different lengths."""
    if get_dist_info()[1] == 1:
        return local
    sizes = [int(n) for n in all_gather(torch.tensor([len(local)], device=local.device))]
    padded = local.new_zeros((max(sizes),) + tuple(local.shape[1:]))
    padded[:len(local)] = local
    return torch.cat([block[:n] for block, n in zip(all_gather(padded), sizes)])


@HOOKS.register_module()
class PrototypeHook(Hook):
    """Build the prototype bank the SLPD prototype head distils towards.

    The defaults of the settings that define the bank come from
    :data:`~slpd_plugin.prototypes.settings.REFRESH_DEFAULTS`.

    Args:
        num_clusters: Prototypes per slide ``K``. Defaults to 4 (NSCLC).
        min_regions: Fewest regions a slide needs to get prototypes. Defaults to 32.
        num_neighbors: Neighbour slides per slide ``r``. Defaults to 1.
        warm_epochs: Epochs of plain DINO before the first refresh; the first refresh is
            at the start of 0-based epoch ``warm_epochs`` (:meth:`refreshes_at`). The
            original's ``warm_epoch`` counts one less (``epoch > warm_epoch``): its
            ``warm_epoch=20`` is ``warm_epochs=21`` here, what the paper configs set.
            Defaults to 20.
        embedding: ``'z'`` (normalised head bottleneck) or ``'cls'`` (backbone output;
            only without a prototype head, whose targets need ``z``-space prototypes:
            refused before training otherwise). Defaults to 'z'.
        backend: k-means backend, ``'torch'`` (batched) or ``'faiss'``. Defaults to 'torch'.
        iters: k-means iterations. Defaults to 10.
        restarts: k-means restarts. Defaults to 5.
        seed: k-means seed. Defaults to 0.
        crop: Side of the centre crop the teacher embeds. Defaults to
            :data:`~slpd_plugin.prototypes.settings.REFRESH_CROP` (14).
        batch_size: Regions per forward pass of the embedding pass. Defaults to 256.
        num_workers: DataLoader workers of the embedding pass (they persist from one
            refresh to the next; memory is pinned for a CUDA model, and the pass runs
            under the training's autocast, if any). Defaults to 2.
        source: ``'pass'`` embeds every region at the refresh (the paper's way, default).
            ``'memory'`` reuses the teacher's embedding of global view 0 from each region's
            last training step in the previous epoch and embeds only unseen regions: the
            refresh costs almost nothing, but the embeddings are stale (made by the teacher
            of up to one epoch ago, on a random global crop with flips, not the centre
            crop). Defaults to 'pass'.
        assignment: How a region picks its prototype: ``'l2'``, the k-means centroid
            nearest (L2) to its normalised embedding, as the original SLPD does (a faiss
            search against the raw centroids); ``'cosine'``, the normalised prototype
            with the highest dot product. See
            :func:`~slpd_plugin.prototypes.build.finish_bank`. Defaults to 'l2'.

    Note:
        When the training dataset has a ``prototype_dataset`` (window views), that is the
        set embedded, clustered and counted by ``min_regions``, its windows embedded whole
        (``crop`` is not used); ``source`` must be ``'pass'`` and the prototype head's
        ``assign_from`` ``'teacher'`` (the training samples are not in the bank).
    """

    priority = 'NORMAL'

    def __init__(self, num_clusters: int = DEFAULTS.num_clusters,
                 min_regions: int = DEFAULTS.min_regions,
                 num_neighbors: int = DEFAULTS.num_neighbors, warm_epochs: int = 20,
                 embedding: str = DEFAULTS.embedding, backend: str = 'torch',
                 iters: int = 10, restarts: int = 5, seed: int = 0,
                 crop: int = DEFAULTS.crop, batch_size: int = 256, num_workers: int = 2,
                 source: str = 'pass', assignment: str = DEFAULTS.assignment) -> None:
        if source not in ('pass', 'memory'):
            raise ValueError(f"source must be 'pass' or 'memory', got {source!r}")
        if assignment not in ASSIGNMENTS:
            raise ValueError(f'PrototypeHook: assignment must be one of {ASSIGNMENTS}, '
                             f'got {assignment!r}')
        if embedding not in ('z', 'cls'):
            raise ValueError(f"embedding must be 'z' or 'cls', got {embedding!r}")
        if num_clusters < 1 or min_regions < 1 or num_neighbors < 1 or warm_epochs < 0:
            raise ValueError('need num_clusters, min_regions, num_neighbors >= 1 and '
                             f'warm_epochs >= 0, got {num_clusters}, {min_regions}, '
                             f'{num_neighbors}, {warm_epochs}')
        self.num_clusters, self.min_regions = num_clusters, min_regions
        self.num_neighbors, self.warm_epochs = num_neighbors, warm_epochs
        self.embedding, self.crop = embedding, crop
        self.kmeans = dict(backend=backend, iters=iters, restarts=restarts, seed=seed)
        self.batch_size, self.num_workers = batch_size, num_workers
        self.source, self.assignment = source, assignment
        self._memory: tuple[torch.Tensor, torch.Tensor] | None = None  # (N, D), (N,)
        self._pass_loader: DataLoader | None = None  # every region; workers persist
        self.bank_epoch: int | None = None
        self._warned_empty = False

    @staticmethod
    def pass_dataset(runner):
        """The samples the bank is built from.

        The training dataset's ``prototype_dataset`` (fixed windows, for window views) or
        the training dataset itself.
        """
        dataset = runner.train_dataloader.dataset
        return getattr(dataset, 'prototype_dataset', dataset)

    @staticmethod
    def over_windows(runner) -> bool:
        """Whether the training samples are window views outside the bank."""
        return hasattr(runner.train_dataloader.dataset, 'prototype_dataset')

    def before_train(self, runner) -> None:
        """Refuse settings the bank cannot serve; log the refresh's k-means.

        Refused: a CLS prototype space with a prototype head; over window views, the
        ``'memory'`` source or a head that looks samples up in the bank. The log line
        names the k-means backend, faiss and device the refreshes use.
        """
        head = getattr(unwrap(runner.model), 'prototype_head', None)
        if self.embedding == 'cls' and head is not None:
            raise ValueError(f"PrototypeHook(embedding='cls'): {CLS_WITH_PROTOTYPE_HEAD}")
        if self.over_windows(runner):
            name = type(runner.train_dataloader.dataset).__name__
            if self.source != 'pass':
                raise ValueError(f"PrototypeHook(source={self.source!r}): {name} draws new "
                                 "windows every step, none of them in the bank; use "
                                 "source='pass'")
            if head is not None and getattr(head, 'assign_from', 'bank') != 'teacher':
                raise ValueError(f"model.prototype_head.assign_from={head.assign_from!r}: "
                                 f"{name}'s samples are windows the refresh never embedded; "
                                 "set assign_from='teacher'")
        line, warning = describe_refresh(self.kmeans['backend'],
                                         next(unwrap(runner.model).parameters()).device)
        runner.logger.info(line)
        if warning:
            runner.logger.warning(warning)

    def refreshes_at(self, epoch: int) -> bool:
        """Whether the bank is built at the start of 0-based ``epoch``.

        The prototype terms are then trained in it: after ``warm_epochs`` epochs of plain
        DINO.
        """
        return epoch >= self.warm_epochs

    def before_train_epoch(self, runner) -> None:
        """Refresh the bank after warm-up (unless resumed mid-epoch with it); drop it before."""
        if not self.refreshes_at(runner.epoch):
            unwrap(runner.model).bank = None  # e.g. a bank that came with load_from
        elif self.bank_epoch != runner.epoch:  # not resumed mid-epoch with its bank
            self.refresh(runner)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        """With ``source='memory'``, store the step's teacher embeddings by region index."""
        if self.source != 'memory' or not self.refreshes_at(runner.epoch + 1):
            return
        emb = unwrap(runner.model).last_teacher_embeddings.get(self.embedding)
        if emb is None:
            return
        if self._memory is None:
            n = len(runner.train_dataloader.dataset)
            self._memory = (emb.new_zeros(n, emb.shape[1], dtype=torch.float32),
                            emb.new_zeros(n, dtype=torch.float32))
        # Asynchronous from the loader's pinned memory (pin_memory=True): no host wait.
        index = data_batch['data_samples']['index'].to(emb.device, non_blocking=True)
        self._memory[0][index] = emb.float()
        self._memory[1][index] = 1.0

    def loader(self, runner, indices: np.ndarray, device: torch.device) -> DataLoader:
        """The embedding pass's loader of this rank's share of ``indices``.

        Memory is pinned for a CUDA model; the loader of every region
        (``source='pass'``) is made once and its workers persist between refreshes.
        """
        dataset = self.pass_dataset(runner)
        every = len(indices) == len(dataset)
        if every and self._pass_loader is not None:
            return self._pass_loader
        rank, world = get_dist_info()
        shard = np.array_split(indices, world)[rank]
        loader = DataLoader(Subset(dataset, shard.tolist()), batch_size=self.batch_size,
                            num_workers=self.num_workers, shuffle=False,
                            pin_memory=device.type == 'cuda',
                            persistent_workers=every and self.num_workers > 0)
        if every:
            self._pass_loader = loader
        return loader

    @torch.no_grad()
    def embed_regions(self, runner, indices: np.ndarray) -> torch.Tensor:
        """Teacher embeddings of ``indices``, ``(len(indices), D)``, the same on every rank.

        The regions are shared out over the ranks and the embeddings gathered.
        """
        model = unwrap(runner.model)
        device = next(model.parameters()).device
        rank = get_dist_info()[0]
        amp = getattr(getattr(runner, 'optim_wrapper', None), 'autocast_dtype', None)
        crop = None if self.over_windows(runner) else self.crop  # windows: embedded whole
        chunks = []
        # Under the training's autocast (bf16/fp16 with --amp, none without), as its steps.
        with torch.autocast(device.type, dtype=getattr(torch, amp) if amp else None,
                            enabled=amp is not None):
            for batch in progress_bar(self.loader(runner, indices, device),
                                      desc='prototype refresh: embedding',
                                      disable=rank != 0, unit='batch', mininterval=5):
                masks = batch.get('masks')  # (b, G, G), from a store with holes
                masks = None if masks is None else masks.to(device, non_blocking=True)
                chunks.append(embed_grids(model, batch['inputs'].to(device, non_blocking=True),
                                          crop, self.embedding, masks=masks))
        dim = (model.student.head.bottleneck_dims if self.embedding == 'z'
               else model.student.backbone.embed_dims)
        local = torch.cat(chunks) if chunks else torch.zeros(0, dim, device=device)
        return gather_rows(local.float())

    def embed_all(self, runner) -> torch.Tensor:
        """Teacher embeddings of every region, (N, D), identical on every rank."""
        n = len(self.pass_dataset(runner))
        if self.source == 'pass' or self._memory is None:
            return self.embed_regions(runner, np.arange(n))
        total, seen = self._memory
        self._memory = None
        all_reduce(total, op='sum')  # each rank filled the regions its steps saw
        all_reduce(seen, op='sum')
        embeddings = total / seen.clamp_min(1.0)[:, None]
        unseen = torch.nonzero(seen == 0).flatten().cpu().numpy()
        if len(unseen):
            embeddings[torch.as_tensor(unseen, device=embeddings.device)] = \
                self.embed_regions(runner, unseen).to(embeddings.device)
        runner.logger.info(f'prototype refresh: reused {n - len(unseen)} training-step '
                           f'embeddings, embedded {len(unseen)} unseen regions')
        return embeddings

    def refresh(self, runner) -> None:
        """Embed, cluster this rank's slides, gather, build and install the bank, log its stats."""
        model = unwrap(runner.model)
        dataset = self.pass_dataset(runner)
        embeddings = self.embed_all(runner)
        slide_index = torch.as_tensor(dataset.slide_index, device=embeddings.device)
        num_slides = dataset.num_slides
        rank, world = get_dist_info()
        my_slides = torch.as_tensor(np.array_split(np.arange(num_slides), world)[rank],
                                    device=embeddings.device)
        centroids, valid, inertia = cluster_slides(
            embeddings, slide_index, num_slides, self.num_clusters, self.min_regions,
            slides=my_slides, **self.kmeans)
        centroids, inertia = gather_rows(centroids), gather_rows(inertia)
        valid = gather_rows(valid.to(torch.uint8)).bool()
        clustered = gather_rows(my_slides)  # slide ids in the order of `centroids`
        if not torch.equal(clustered, torch.arange(num_slides, device=clustered.device)):
            raise RuntimeError(f'prototype refresh: gathered slide shards do not cover the '
                               f'{num_slides} slides once each, in order')
        runner.logger.info(f'prototype refresh: {num_slides} slides clustered once each '
                           f'over {world} rank(s)')
        bank = finish_bank(embeddings, slide_index, centroids, valid, inertia,
                           num_neighbors=self.num_neighbors, assignment=self.assignment)
        previous = model.bank
        self.install(runner, bank if bool(bank.valid.any()) else None)
        self.bank_epoch = runner.epoch
        if model.bank is None:
            return
        stats = bank.summary()
        sizes = bank.cluster_sizes[bank.valid].float().flatten()
        stats.update({f'cluster_size_p{q}': sizes.quantile(q / 100).item()
                      for q in (10, 50, 90)})
        if previous is not None and len(previous.assignments) == len(bank.assignments):
            stats['churn'] = assignment_churn(previous.assignments.to(slide_index.device),
                                              bank.assignments.to(slide_index.device),
                                              slide_index, self.num_clusters)
        runner.logger.info('prototype bank: ' + ', '.join(f'{k}={v:.4g}'
                                                          for k, v in stats.items()))
        runner.visualizer.add_scalars({f'prototypes/{k}': v for k, v in stats.items()},
                                      step=runner.iter)

    def install(self, runner, bank: PrototypeBank | None) -> None:
        """Put ``bank`` on the model's device (None: plain DINO, warned once)."""
        model = unwrap(runner.model)
        if bank is None and not self._warned_empty:
            runner.logger.warning(
                f'no slide has >= {self.min_regions} regions (min_regions): no prototypes, '
                'training continues as plain DINO')
            self._warned_empty = True
        device = next(model.parameters()).device
        model.bank = None if bank is None else bank.to(device)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Save the current bank and the epoch it was built for."""
        bank = unwrap(runner.model).bank
        if bank is not None:
            checkpoint[CKPT_KEY] = bank_checkpoint_entry(bank, self.bank_epoch)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Install a checkpoint's bank; keep it for the epoch when resumed mid-epoch."""
        loaded = bank_from_checkpoint(checkpoint)
        if loaded is None:
            return
        bank, epoch = loaded
        self.install(runner, bank)
        # A checkpoint written mid-epoch resumes inside the epoch its bank was built for.
        meta = checkpoint.get('meta', {})
        resumes_mid_epoch = meta.get('iter', 0) % max(len(runner.train_dataloader), 1) != 0
        self.bank_epoch = epoch if resumes_mid_epoch else None
