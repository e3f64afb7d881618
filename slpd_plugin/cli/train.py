"""Train SLPD / DINO-4K from a config.

Examples:
    python tools/train.py configs/demo_dino4k.py
    python tools/train.py configs/demo_dino4k.py --work-dir work_dirs/demo --resume
    python tools/train.py configs/slpd_lung.py --amp --cfg-options train_dataloader.batch_size=64
    python tools/train.py configs/slpd_lung.py --amp fp16  # fp16 autocast + loss scaler
    tools/dist_train.sh configs/slpd_lung.py 4          # torchrun, one process per GPU
"""
from __future__ import annotations

import argparse
import os
import sys

from mmengine.config import Config, DictAction

from slpd_plugin.engine.launch import AMP_DTYPES, build_runner, prepare_config, shutdown_distributed
from slpd_plugin.utils.cli import ToolParser, run_tool

PROG = 'train.py'


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the training command line (config, --work-dir, --resume, --amp, ...).

    Also sets ``LOCAL_RANK`` in the environment from ``--local-rank`` when it is not set
    yet (older launchers pass the rank as a flag).
    """
    parser = ToolParser(prog=PROG, description=__doc__,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='config file, e.g. configs/demo_dino4k.py')
    parser.add_argument('--work-dir', help='where logs and checkpoints go '
                        '(default: work_dirs/<config name>)')
    parser.add_argument('--resume', nargs='?', const='auto', default=None,
                        help='resume from the latest checkpoint of --work-dir, or from the '
                        'given checkpoint of that work dir')
    parser.add_argument('--amp', nargs='?', const='bf16', choices=sorted(AMP_DTYPES),
                        help='autocast, CPU or GPU: bf16 (bare --amp; no loss scaling '
                        'needed) or fp16 (with a dynamic loss scaler)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, metavar='KEY=VALUE',
                        help='override config values, e.g. model.backbone.arch=s')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none',
                        help='job launcher (dist_train.sh sets pytorch)')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0,
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def configure(argv: list[str] | None = None) -> Config:
    """The training config of the command line (a bad argument or config file: an error)."""
    args = parse_args(argv)
    return prepare_config(args.config, work_dir=args.work_dir, resume=args.resume,
                          amp=args.amp, cfg_options=args.cfg_options, launcher=args.launcher)


def main(argv: list[str] | None = None) -> int:
    """Train from the command line ``argv`` (default: ``sys.argv[1:]``).

    Only the set-up (arguments and config) follows the one-line error convention and its
    exit status (2 or 1); an error while training keeps its traceback. Returns 0 after
    training and shutting down the process group, if any.
    """
    configs: list[Config] = []
    # only the set-up reports errors as one line; an error while training keeps its traceback
    status = run_tool(PROG, lambda: configs.append(configure(argv)))
    if status:
        return status
    runner = build_runner(configs[0])
    runner.train()
    del runner
    shutdown_distributed()
    return 0


if __name__ == '__main__':
    sys.exit(main())
