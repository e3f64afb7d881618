"""The steps that make one row of the demo: train (or initialise), embed, evaluate.

Training runs ``python -m slpd_plugin.cli.train`` in a subprocess (mmengine keeps global
state); a step's output goes to a log file, and a failure becomes a one-line
:class:`DemoError` naming that log.

- :func:`train_row`: a method of :data:`~.methods.METHODS`, trained with one seed;
- :func:`random_init_row_aucs`: the same config, untrained (:mod:`.random_init`);
- :func:`abmil_aucs`: the supervised ABMIL on the raw region features;
- :func:`embed_method`: a checkpoint's slide embeddings by the method's route
  (:data:`~.methods.SLIDE_ROUTES`), checked up front by :func:`check_routes`;
- :func:`evaluate`: knn/linear (or ``mil``) test AUCs of an embedding folder.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator, Sequence

from slpd_plugin.checkpoints import load_checkpoint, load_encoder
from slpd_plugin.checkpoints.extract import extract_embeddings
from slpd_plugin.datasets import StoreError, open_store
from slpd_plugin.datasets.labels import load_labels
from slpd_plugin.evaluation.data.splits import load_splits
from slpd_plugin.evaluation.protocols.baselines import FEATHER_LIKE
from slpd_plugin.evaluation.reporting.runs import run_classification
from slpd_plugin.utils.cli import UserError
from slpd_plugin.utils.weights import encoder_state

from .methods import METHODS, SLIDE_ROUTES
from .random_init import save_random_init
from .report import fold_aucs
from .trident_writer import store_to_trident

__all__ = ['PROTOCOLS', 'ROOT', 'DemoError', 'TrainedRow', 'abmil_aucs', 'check_routes',
           'embed_method', 'evaluate', 'random_init_row_aucs', 'train_row']

#: The checkout holding ``configs/`` (the demo's configs) and this package.
ROOT = Path(__file__).resolve().parents[2]
PROTOCOLS = ('knn', 'linear')


class DemoError(UserError):
    """A step failed: one line, exit status 1."""


def run_logged(cmd: list[str], log: Path, step: str) -> None:
    """Run a command in a subprocess with the checkout first on ``PYTHONPATH``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get('PYTHONPATH')])]))
    with log.open('w') as fh:
        code = subprocess.run(cmd, cwd=ROOT, env=env, stdout=fh,
                              stderr=subprocess.STDOUT).returncode
    if code != 0:
        tail = [line for line in log.read_text().splitlines() if line.strip()][-1:]
        raise DemoError(f'{step} failed (exit {code}); see {log}: '
                        f'{tail[0] if tail else "no output"}')


@contextlib.contextmanager
def logged(log: Path, step: str) -> Iterator[None]:
    """Send a step's output to ``log``; a failure becomes a DemoError naming the log."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open('w') as fh:
        try:
            with contextlib.redirect_stdout(fh), contextlib.redirect_stderr(fh):
                yield
        except (StoreError, ValueError, KeyError, FileNotFoundError) as err:
            print(f'error: {err}', file=fh)
            raise DemoError(f'{step} failed; see {log}: {err}') from err


def evaluate(emb: Path, bench: Path, out: Path, step: str,
             protocols: Sequence[str] = PROTOCOLS, seed: int = 0,
             mil_epochs: int = FEATHER_LIKE.epochs) -> dict[str, list[float]]:
    """The test AUC of each split per protocol (HIPT's protocols; labels: oncotree_code).

    ``mil`` trains the FEATHER-sized ABMIL
    (:data:`~slpd_plugin.evaluation.protocols.baselines.FEATHER_LIKE`) with ``seed`` for
    ``mil_epochs`` epochs.
    """
    mil = replace(FEATHER_LIKE, epochs=mil_epochs)
    aucs = {}
    table = load_labels(bench / 'labels.csv')
    splits = load_splits(bench / 'splits')
    wanted = set().union(*(s.all_ids() for s in splits)) & set(table.labels)
    for protocol in protocols:
        target = out / f'eval_{protocol}'
        with logged(target / 'eval.log', f'{step} {protocol}'):
            run_classification(protocol, emb, table, splits, target, wanted, seed=seed,
                               mil=mil, roc='mean')
        aucs[protocol] = fold_aucs(target)
    return aucs


def check_routes(methods: Sequence[str]) -> None:
    """Fail before any training when a method's slide route is not available."""
    for name in methods:
        route = SLIDE_ROUTES[METHODS[name].slide]
        if route.extract_args is None:
            raise DemoError(f'method {name}: slide route {METHODS[name].slide!r} '
                            f'({route.description}) is not available in this checkout')


def embed_method(method: str, config: Path, ckpt: Path, bench: Path, run_dir: Path,
                 step: str) -> Path:
    """Write ``method``'s slide (or region) embeddings, by its route, into ``run_dir/emb``.

    Returns the folder the protocols read.
    """
    check_routes([method])
    route = SLIDE_ROUTES[METHODS[method].slide]
    args = route.extract_args or ()
    emb = run_dir / 'emb'
    if not args:
        with logged(run_dir / 'extract.log', step):
            extract_embeddings(load_encoder(config, ckpt), open_store(bench / 'store'), emb,
                               progress=False,
                               provenance=dict(config=str(config), checkpoint=str(ckpt)))
    else:
        run_logged([sys.executable, '-m', 'slpd_plugin.cli.extract_embeddings', str(config),
                    str(ckpt), '--store', str(data_source(method, bench)), '--out', str(emb),
                    '--no-progress', *args], run_dir / 'extract.log', step)
    if route.folder == '.':
        return emb
    found = sorted(emb.glob(route.folder))
    if len(found) != 1:
        raise DemoError(f'{step}: expected one {route.folder} folder under {emb}, '
                        f'found {len(found)}')
    return found[0]


@dataclass
class TrainedRow:
    """A trained method of one seed: its checkpoint, embedding folder and AUCs.

    Attributes:
        work_dir: The training work dir (``vis_data`` scalars, checkpoints).
        ckpt: The last checkpoint.
        emb: The folder the protocols read.
        aucs: Protocol -> test AUC of each split.
    """

    work_dir: Path
    ckpt: Path
    emb: Path
    aucs: dict[str, list[float]]


def data_source(method: str, bench: Path) -> Path:
    """What ``method`` trains from and is embedded from (:attr:`Method.data`).

    The benchmark's region store, or its slides as a TRIDENT folder (written on first
    use, every patch of the store's regions: no holes, all at 20x).
    """
    if METHODS[method].data == 'regions':
        return bench / 'store'
    folder = bench / 'trident'
    if not (folder / 'done').is_file():
        shutil.rmtree(folder, ignore_errors=True)
        store_to_trident(bench / 'store', folder, hole_fraction=0.0, slides_40x=0)
        (folder / 'done').touch()
    return folder


def _store_option(method: str, bench: Path) -> dict[str, str]:
    return {'train_dataloader.dataset.store': str(data_source(method, bench))}


def train_row(method: str, seed: int, bench: Path, run_dir: Path, preset: str,
              timings: dict[str, float]) -> TrainedRow:
    """Train ``method`` with ``seed`` on the benchmark store, embed and evaluate."""
    shutil.rmtree(run_dir, ignore_errors=True)
    config = METHODS[method].config(preset)
    work = run_dir / 'train'
    start = time.time()
    run_logged([sys.executable, '-m', 'slpd_plugin.cli.train', config, '--work-dir', str(work),
                '--cfg-options',
                *(f'{k}={v}' for k, v in _store_option(method, bench).items()),
                f'randomness.seed={seed}'], run_dir / 'train.log',
               f'training {method} seed {seed}')
    timings[f'train {method} (seed {seed})'] = time.time() - start
    ckpt = Path((work / 'last_checkpoint').read_text().strip())
    start = time.time()
    saved = work / Path(config).name  # the config as trained (store and seed applied)
    emb = embed_method(method, saved, ckpt, bench, run_dir,
                       f'extraction {method} seed {seed}')
    aucs = evaluate(emb, bench, run_dir, f'evaluation {method} seed {seed}')
    timings[f'extract + eval {method} (seed {seed})'] = time.time() - start
    return TrainedRow(work, ckpt, emb, aucs)


def _teacher_digest(ckpt: Path) -> str:
    """SHA-256 of the teacher backbone's tensors (names, shapes, dtypes and bytes)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(encoder_state(load_checkpoint(ckpt), 'teacher').items()):
        digest.update(f'{name}{tuple(tensor.shape)}{tensor.dtype}'.encode())
        digest.update(tensor.contiguous().numpy().tobytes())
    return digest.hexdigest()


def random_init_row_aucs(method: str, seed: int, bench: Path, run_dir: Path, preset: str,
                         timings: dict[str, float],
                         seen: dict[tuple[str, str], tuple[Path, dict]] | None = None
                         ) -> dict[str, list[float]]:
    """``method``'s config built with ``seed`` and not trained: embed and evaluate.

    ``seen`` maps (teacher digest, slide route) to the run folder and AUCs of the
    random-init rows already evaluated (filled in here): a method whose untrained
    teacher is bit-identical to one of them (SLPD and DINO-4K share the backbone
    config) reuses those AUCs instead of embedding the same weights again
    (``run_dir/same_weights_as.txt`` names that row's folder).
    """
    shutil.rmtree(run_dir, ignore_errors=True)
    start = time.time()
    step = f'random init {method} seed {seed}'
    with logged(run_dir / 'init.log', step):
        config, ckpt = save_random_init(ROOT / METHODS[method].config(preset), seed,
                                        run_dir / 'init', _store_option(method, bench))
    key = (_teacher_digest(ckpt), METHODS[method].slide)
    if seen is not None and key in seen:
        earlier, aucs = seen[key]
        (run_dir / 'same_weights_as.txt').write_text(f'{earlier}\n')
        timings[f'{step}: init (same weights as an earlier row)'] = time.time() - start
        return aucs
    emb = embed_method(method, config, ckpt, bench, run_dir, f'extraction {step}')
    aucs = evaluate(emb, bench, run_dir, f'evaluation {step}')
    if seen is not None:
        seen[key] = (run_dir, aucs)
    timings[f'{step}: init + extract + eval'] = time.time() - start
    return aucs


def abmil_aucs(raw_regions: Path, bench: Path, out: Path, seed: int, epochs: int,
               timings: dict[str, float]) -> list[float]:
    """Supervised ABMIL on the raw region features (``raw_regions``), trained per split."""
    start = time.time()
    aucs = evaluate(raw_regions, bench, out, f'ABMIL seed {seed}', ('mil',), seed,
                    epochs)['mil']
    timings[f'ABMIL on raw features (seed {seed})'] = time.time() - start
    return aucs
