"""FID and KID of a model's samples for a table of samplers, variances, step counts and precisions, scored against two
slices of the Fashion-MNIST test set: the first 1000 images (the slice the recipe was chosen on) and images 5000-5999
(a slice that played no part in any choice). Rows are appended to a JSON-lines file as they finish, and rows already in
it are skipped, so a killed run resumes where it stopped.

    python bench/sampler_table.py --models fashion_mnist runs/main --rows ancestral:fixedsmall:100,ddim::50 \\
        --out bench/results/2026-12-05_cpu_sampler_table.jsonl [--n 1000] [--precision auto] [--seeds 0]
"""
from __future__ import annotations
import argparse, json, os, time
from pathlib import Path
import torch

SLICES = {'test0': (0, 1000), 'test5000': (5000, 6000)}


def parse_rows(spec:str)->list:
    "'ancestral:fixedsmall:100,ddim::50' -> [(sampler, variance or 'auto', steps), ...]"
    rows = []
    for item in spec.split(','):
        name, var, steps = item.split(':')
        rows.append((name, var or 'auto', int(steps)))
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--models', nargs='+', required=True, help='shipped names, run dirs or checkpoint dirs')
    ap.add_argument('--rows', required=True, help='sampler:variance:steps,... (variance empty for ddim)')
    ap.add_argument('--out', required=True, help='JSON-lines file; existing rows are kept and skipped')
    ap.add_argument('--n', type=int, default=1000)
    ap.add_argument('--precision', default='auto', help="comma-separated: auto, fp32, bf16")
    ap.add_argument('--seeds', default='0', help='comma-separated sample seeds')
    ap.add_argument('--batch-size', type=int, default=250)
    a = ap.parse_args(argv)
    from ddpm_nb.checkpoint import load_model
    from ddpm_nb.sample import sample
    from ddpm_nb.classifier import fmnist_features
    from ddpm_nb.metrics import fid_from_features, kid_from_features
    from ddpm_nb.evaluate import reference_images
    test = reference_images('fashion_mnist', 10_000)
    fref = {k: fmnist_features(test[lo:hi]) for k, (lo, hi) in SLICES.items()}
    out = Path(a.out); out.parent.mkdir(parents=True, exist_ok=True)
    done = set()
    if out.exists():
        for line in out.read_text().splitlines():
            r = json.loads(line)
            done.add((r['model'], r['sampler'], r['variance_asked'], r['steps'], r['precision_asked'],
                      r['seed'], r['n']))
    for prec in a.precision.split(','):
        for seed in [int(s) for s in a.seeds.split(',')]:
            for name, var, steps in parse_rows(a.rows):
                for m in a.models:
                    key = (m, name, var, steps, prec, seed, a.n)
                    if key in done: continue
                    model, diffusion, cfg = load_model(m)
                    t0, load0, plan = time.time(), os.getloadavg()[0], {}
                    x = sample(model, diffusion, a.n, name, steps, generator=torch.Generator().manual_seed(seed),
                               batch_size=a.batch_size, variance=var, precision=prec, plan=plan)
                    sec = time.time() - t0
                    f = fmnist_features(x)
                    row = dict(model=m, step=cfg.get('step'), elapsed=cfg.get('elapsed'), sampler=name,
                               variance_asked=var, steps=steps, precision_asked=prec, seed=seed, n=a.n, plan=plan,
                               seconds=round(sec, 1), load_before=load0, load_after=os.getloadavg()[0],
                               torch=torch.__version__, threads=torch.get_num_threads(),
                               date=time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()))
                    for k, fr in fref.items():
                        km, ks = kid_from_features(f, fr)
                        row[k] = dict(fid=fid_from_features(f, fr), kid_mean=km, kid_std=ks)
                    with out.open('a') as fh: fh.write(json.dumps(row) + '\n')
                    print(f"{m} {name} {plan.get('variance')} {steps} {plan['precision']} seed {seed}: FID "
                          f"{row['test0']['fid']:.2f} / {row['test5000']['fid']:.2f} ({sec:.0f} s)", flush=True)


if __name__ == '__main__': main()
