"""Ship a checkpoint's EMA weights as `ddpm_nb/weights/<name>/` (config.json + ema.safetensors), with their provenance.

    python tools/ship_weights.py runs/retrain1 --table bench/results/X_table.jsonl --scores bench/results/X_scores.json \
        --what "..." --command "..." --device "..." [--name fashion_mnist] [--prior-images N --prior-seconds S] \
        [--replaces "..."]

--table is `bench/sampler_table.py`'s JSON lines: every row of this checkpoint is recorded, per sampler (variance) and
step count, the FID on each test slice for each sample seed. --scores is `bench/score_models.py --bpd`'s JSON for this
checkpoint: the test-set bits/dim with its 95% interval, and the FID floor. The provenance records them so that the
notebooks can check that the weights they load are the ones scored. The files are written to a temporary directory and
put in place by `ddpm_nb.checkpoint.replace_dir` (fsync, rename): a failure leaves the old weights.
"""
from __future__ import annotations
import argparse, json, shutil, tempfile, time
from pathlib import Path


def checkpoint_rows(rows:list, path:Path, step:int, resolve)->list:
    "The rows scoring the checkpoint at `path` (its step, precision 'auto'); `resolve` maps a row's model to its path."
    paths = {}                                            # each model name resolved once
    def is_ours(m):
        if m not in paths: paths[m] = resolve(m).resolve()
        return paths[m] == path.resolve()
    return [r for r in rows if r['step'] == step and r['precision_asked'] == 'auto' and is_ours(r['model'])]


def table_scores(rows:list)->dict:
    "FID per sampler of one checkpoint's rows: {'dpm++sde 20': {'seeds': [...], 'test0': [...], ...}}"
    out, seen = {}, set()
    for r in sorted(rows, key=lambda r: r['seed']):
        key = ' '.join(str(v) for v in (r['sampler'], r['plan']['variance'], r['steps']) if v)
        if (key, r['seed']) in seen: raise SystemExit(f"two rows for {key}, seed {r['seed']}")
        seen.add((key, r['seed']))
        d = out.setdefault(key, {'seeds': [], 'test0': [], 'test5000': [], 'n': r['n'], 'precision': r['plan']['precision']})
        d['seeds'].append(r['seed'])
        for sl in ('test0', 'test5000'): d[sl].append(round(r[sl]['fid'], 3))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('ckpt', help='a checkpoint or run directory (its newest checkpoint)')
    ap.add_argument('--table', required=True, help="bench/sampler_table.py's rows (JSON lines)")
    ap.add_argument('--scores', required=True, help="bench/score_models.py --bpd's JSON")
    ap.add_argument('--what', required=True)
    ap.add_argument('--command', required=True)
    ap.add_argument('--device', required=True)
    ap.add_argument('--name', default='fashion_mnist')
    ap.add_argument('--prior-images', type=int, default=0,
                    help='images seen by the weights this run started from (--init)')
    ap.add_argument('--prior-seconds', type=float, default=0.0,
                    help='training seconds behind the weights this run started from')
    ap.add_argument('--replaces', default=None)
    a = ap.parse_args(argv)
    from ddpm_nb.checkpoint import load_checkpoint, load_model, replace_dir, find_checkpoint, weights_dir
    ck = load_checkpoint(a.ckpt, state=False)
    cfg, path = ck['config'], ck['path']
    rows = checkpoint_rows([json.loads(l) for l in Path(a.table).read_text().splitlines() if l.strip()],
                           path, cfg['step'], find_checkpoint)
    if not rows: raise SystemExit(f"{a.table} holds no rows of {path}")
    fids = table_scores(rows)
    scores = json.loads(Path(a.scores).read_text())
    bpd = [v['bpd'] for v in scores['models'].values()
           if 'bpd' in v and any(Path(p['ckpt']).resolve() == path.resolve() for p in v.values() if 'ckpt' in p)]
    if len(bpd) != 1: raise SystemExit(f"{a.scores} holds no bits/dim of {path} (score it with --bpd)")
    b, r0 = bpd[0], rows[0]
    images = cfg['step'] * cfg['train']['batch_size']
    cfg['provenance'] = {
        'what': a.what, 'command': a.command, 'device': a.device, 'date': time.strftime('%Y-%m-%d', time.gmtime()),
        'step': cfg['step'], 'images_seen': a.prior_images + images, 'images_this_run': images,
        'wall_time_s': round(a.prior_seconds + float(cfg.get('elapsed', 0.0)), 1),
        'init': cfg['train'].get('init'),
        'scores': {
            'protocol': 'FID in the Fashion-MNIST classifier space, n samples against test images 0-999 (test0) and '
                        f"5000-5999 (test5000), one entry per sample seed (floor: the first 1000 training images "
                        f"against test0, {scores['floor_train_vs_test']['fid']:.2f})",
            'fid': fids,
            'bpd_test_10000': round(b['mean'], 4), 'bpd_95ci': [round(b['lo'], 4), round(b['hi'], 4)],
            'bpd_estimator': f"bpd_stratified, {b['estimator']}, all {b['n']} test images",
            'measured_on': f"{r0['threads']} threads, torch {r0['torch']}, bench/sampler_table.py {r0['date'][:10]}; "
                           f"bench/score_models.py --bpd {scores['date'][:10]}",
            'files': [str(a.table), str(a.scores)]},
        **({'replaces': a.replaces} if a.replaces else {}),
    }
    dest = weights_dir() / a.name
    tmp = Path(tempfile.mkdtemp(prefix=f'.tmp-{a.name}-', dir=weights_dir()))
    try:
        shutil.copy(path / 'ema.safetensors', tmp / 'ema.safetensors')
        (tmp / 'config.json').write_text(json.dumps(cfg, indent=1) + '\n')
        load_model(tmp)                                   # it must load as shipped weights do
        replace_dir(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"shipped {path} as {dest}: step {cfg['step']}, " + ', '.join(f"FID {k} {v['test0']}" for k, v in fids.items())
          + f", {b['mean']:.4f} bits/dim")


if __name__ == '__main__': main()
