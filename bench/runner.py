"""The command line and the run record that `bench.py` and each section script share.

A section is a module beside this one (`train_speed`, `sampling_speed`, `bpd_speed`, `gpu_speed`) with `SKIP` (the
names `--skip` knows it by), `add_args(parser)`, `FULL` and `QUICK` (its sizes for a measurement and for `--quick`),
and `run(a, device, images, log, R, ctx)`, which adds its results to the record `R` (`ctx` carries the network pair
from one section to the next). `main` parses the options, records the machine, measures the matmul peak, loads the
images, runs the sections in order, then prints the table and writes the JSON and markdown.
"""
from __future__ import annotations
import argparse, json, os, sys, time, warnings
from pathlib import Path

import torch

from common import load_bench_images, machine_info, matmul_peak
from report import render, to_markdown

FULL = dict(preset='fashion_mnist', matmul_n=2048)
QUICK = dict(preset='tiny', matmul_n=256)

def parser(doc:str, sections:list, peak:bool):
    "The options every script takes, then each section's own."
    p = argparse.ArgumentParser(description=doc.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--quick', action='store_true', help="tiny sizes (preset 'tiny', T=10 chains, no compile): "
                   "a smoke test in seconds, not a measurement")
    p.add_argument('--json', help='write all results to this JSON file')
    p.add_argument('--render', help='print (and with --md write) the table of a saved JSON run instead of measuring')
    p.add_argument('--md', help='write the markdown table to this file')
    p.add_argument('--threads', type=int, default=1, help='torch.set_num_threads (default 1: on a shared 2-core '
                   'machine 2 threads are slower, OpenMP barriers wait on descheduled threads)')
    p.add_argument('--device', default='auto', help="'auto' (cuda if available), 'cpu' or 'cuda'")
    p.add_argument('--data', default='fashion_mnist', help="the images to train and score on: a load_images name or "
                   "path (its test split), 28x28 grayscale for the default presets")
    p.add_argument('--synthetic', action='store_true',
                   help='random uint8 images instead of --data (no dataset needed; the table says so)')
    p.add_argument('--no-compile', dest='compile', action='store_false', help='leave out the torch.compile variants')
    for s in sections: s.add_args(p)
    skips = (['peak'] if peak else []) + [k for s in sections for k in s.SKIP]
    p.add_argument('--skip', default='', type=lambda s: {v.strip() for v in s.split(',') if v.strip()},
                   help=f"comma-separated sections to skip: {','.join(skips)}")
    p.add_argument('--preset', default=None)
    return p

def parse(argv, doc:str, sections:list, peak:bool=True):
    "The options, with each size not given on the command line taken from FULL, or QUICK with --quick."
    a = parser(doc, sections, peak).parse_args(argv)
    mode = 'QUICK' if a.quick else 'FULL'
    for d in [globals()[mode]] + [getattr(s, mode) for s in sections]:
        for k, v in d.items():
            if getattr(a, k, None) is None: setattr(a, k, v)
    if a.quick: a.compile = False
    return a

def main(argv, doc:str, sections:list, script:str, peak:bool=True):
    """Measure `sections` (modules) as `python script argv` asks; returns the record (or with --render the table).
    `peak`: measure the matmul peak first (the training table gives each row's share of it)."""
    a = parse(argv, doc, sections, peak)
    if a.render: return render(a.render, a.md)              # re-render a saved run's table, measuring nothing
    t_start = time.perf_counter()
    torch.set_num_threads(a.threads)
    warnings.filterwarnings('ignore', category=FutureWarning)
    auto = a.device == 'auto'
    device = torch.device('cuda' if auto and torch.cuda.is_available() else ('cpu' if auto else a.device))
    log = lambda s: print(f'[{time.perf_counter() - t_start:6.1f}s] {s}', file=sys.stderr, flush=True)
    R = {'meta': machine_info(device, a.threads)}
    R['meta']['command'] = f'python {script} ' + ' '.join(sys.argv[1:] if argv is None else argv)
    R['meta']['quick'] = a.quick
    R['meta']['settings'] = {k: (sorted(v) if isinstance(v, set) else v) for k, v in vars(a).items()}
    log(f"{R['meta'].get('cpu_model')}, torch {torch.__version__}, {a.threads} thread(s), device {device}")
    if peak and 'peak' not in a.skip:
        R['matmul_peak'] = matmul_peak(device, a.matmul_n, 3)
        log("matmul peak: " + ', '.join(f"{k} {v['gflops_best']:.0f} GFLOP/s" for k, v in R['matmul_peak'].items()))
    images = load_bench_images(a, Path(script).name)
    R['meta']['data'] = 'synthetic: random uint8 images (--synthetic)' if a.synthetic else f'{a.data} test split'
    ctx = {}
    for s in sections: s.run(a, device, images, log, R, ctx)
    try: R['meta']['loadavg_end'] = list(os.getloadavg())
    except OSError: pass
    R['meta']['wall_s'] = time.perf_counter() - t_start
    md = to_markdown(R)
    print(md)
    for path, text in ((a.json, json.dumps(R, indent=1, default=str)), (a.md, md + '\n')):
        if path: Path(path).parent.mkdir(parents=True, exist_ok=True); Path(path).write_text(text)
    return R
