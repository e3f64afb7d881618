"""The package's layering (docs/architecture.md): no module imports from a higher layer,
and no two top-level folders import each other.

Every ``import`` of every module under ``slpd_plugin/`` is read with :mod:`ast` (imports
inside functions included). Known violations that other items of issue 13 remove are
listed in ``ALLOWED`` with the item; any other violation fails.
"""
from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / 'slpd_plugin'

#: Bottom to top; a part may import from its own layer's other parts only without a cycle.
LAYERS = (
    ('registry', 'version', 'utils'),
    ('prototypes',),
    ('datasets', 'models'),
    ('checkpoints',),
    ('engine',),
    ('evaluation', 'visualization'),
    ('demo',),
    ('cli',),
)
LAYER = {part: level for level, parts in enumerate(LAYERS) for part in parts}

#: (importing module, imported top-level part) -> the issue-13 item that removes it.
ALLOWED: dict[tuple[str, str], str] = {}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix('').parts
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def imported_modules(path: Path) -> set[str]:
    """Absolute names of the ``slpd_plugin`` modules a file imports."""
    name = module_name(path)
    package = name if path.name == '__init__.py' else name.rpartition('.')[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split('.')
                base = base[:len(base) - node.level + 1]
                target = '.'.join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ''
            out.add(target)
            out.update(f'{target}.{alias.name}' for alias in node.names)
    return {m for m in out if m.split('.')[0] == 'slpd_plugin'}


def part_of(module: str) -> str | None:
    """The top-level folder (or module) of the package a module belongs to."""
    parts = module.split('.')
    return parts[1] if len(parts) > 1 else None


def edges() -> dict[tuple[str, str], set[str]]:
    """(importer's part, imported part) -> importing modules, across parts only."""
    found = defaultdict(set)
    for path in sorted(PACKAGE.rglob('*.py')):
        name = module_name(path)
        src = part_of(name)
        if src is None:  # slpd_plugin/__init__.py registers everything
            continue
        for target in imported_modules(path):
            dst = part_of(target)
            if dst is not None and dst != src and dst in LAYER:
                found[(src, dst)].add(name)
    return found


def test_every_part_has_a_layer():
    parts = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()
             if (p.is_dir() and (p / '__init__.py').exists())
             or (p.suffix == '.py' and p.name != '__init__.py')}
    assert parts <= set(LAYER), f'parts without a layer: {sorted(parts - set(LAYER))}'


def test_no_import_goes_up_a_layer():
    bad = []
    for (src, dst), modules in edges().items():
        if LAYER[dst] > LAYER[src]:
            bad += [f'{m} imports {dst} ({src} is below {dst})' for m in sorted(modules)
                    if (m, dst) not in ALLOWED]
    assert not bad, '\n'.join(bad)


def test_no_cycle_between_parts():
    found = edges()
    bad = []
    for (src, dst), modules in found.items():
        if src < dst and (dst, src) in found:
            both = [(m, dst) for m in modules] + [(m, src) for m in found[(dst, src)]]
            new = [f'{m} imports {p}' for m, p in sorted(both) if (m, p) not in ALLOWED]
            if new:
                bad.append(f'{src} <-> {dst}: ' + '; '.join(new))
    assert not bad, '\n'.join(bad)


def test_allow_list_is_current():
    """An allowed violation that is gone must leave the list, so it cannot come back."""
    found = {(m, dst) for (_, dst), modules in edges().items() for m in modules}
    stale = sorted(set(ALLOWED) - found)
    assert not stale, f'no longer imported, remove from ALLOWED: {stale}'
