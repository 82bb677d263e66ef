"""Execute a notebook top to bottom, `#| slow` cells included, and save its outputs in place (what the docs site shows).

    cd nbs && nice -n 19 ../.venv/bin/python ../tools/run_nb.py 08_sample.ipynb [--skip-flag cuda] [--timeout-report]

Cells flagged with a `--skip-flag` (default: cuda, notest) are not run and keep their saved outputs. Stops at the first
exception, leaving the notebook file untouched. Prints each cell's wall time so the duration can be recorded.
"""
from __future__ import annotations
import argparse, os, sys, time
from pathlib import Path


def _flags(cell) -> set:
    "The words of a cell's `#|` directive lines: {'slow'} for `#| slow`, {'export'} for `#| export`."
    return {w for l in cell.source.splitlines() if l.startswith('#|') for w in l[2:].split()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('path')
    ap.add_argument('--skip-flag', action='append', default=None,
                    help='cells with this #| flag are not run (default: cuda, notest)')
    a = ap.parse_args(argv)
    from execnb.nbio import read_nb, write_nb
    from execnb.shell import CaptureShell
    skip = set(a.skip_flag or ['cuda', 'notest'])
    p = Path(a.path).resolve()
    os.chdir(p.parent)
    nb = read_nb(p)
    sh, t_all, times = CaptureShell(), time.time(), []

    def pre(cell):
        if cell.cell_type != 'code': return True
        if _flags(cell) & skip: return True
        if 'nbdev_export()' in cell.source: return True              # the export cell: nothing to show
        pre.t0 = time.time(); return False

    def post(cell):
        times.append((time.time() - pre.t0, cell.source.splitlines()[0][:70] if cell.source else ''))
    sh.run_all(nb, exc_stop=True, preproc=pre, postproc=post)
    total = time.time() - t_all
    write_nb(nb, p)
    for dt, first in sorted(times, reverse=True)[:8]: print(f'{dt:7.1f} s  {first}')
    print(f'{p.name}: {len(times)} cells run in {total:.0f} s', flush=True)


if __name__ == '__main__':
    sys.exit(main())
