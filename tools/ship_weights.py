"""Ship a checkpoint's EMA weights as `ddpm_nb/weights/<name>/` (config.json + ema.safetensors), with their provenance.

    python tools/ship_weights.py runs/shipped_cpu2 --scores bench/results/X_scores.json --what "..." --command "..." \
        --device "..." [--name fashion_mnist] [--prior-images N --prior-seconds S] [--replaces "..."]

The scores file is `bench/score_models.py`'s JSON for this checkpoint (FID ancestral 100 / DDIM 50 at n=1000, and the
bits/dim with --bpd); the provenance records them so the notebooks can check that the weights they load are the ones
scored. The files are written to a temporary directory and put in place by `ddpm_nb.checkpoint.replace_dir` (fsync,
rename): a failure leaves the old weights.
"""
from __future__ import annotations
import argparse, json, shutil, tempfile, time
from pathlib import Path


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('ckpt', help='a checkpoint or run directory (its newest checkpoint)')
    ap.add_argument('--scores', required=True)
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
    from ddpm_nb.checkpoint import load_checkpoint, load_model, replace_dir, weights_dir
    ck = load_checkpoint(a.ckpt, state=False)
    cfg, path = ck['config'], ck['path']
    scores = json.loads(Path(a.scores).read_text())
    model_scores = [v for v in scores['models'].values()
                    if Path(v['ancestral 100']['ckpt']).resolve() == path.resolve()]
    if len(model_scores) != 1: raise SystemExit(f"{a.scores} holds no scores of {path}")
    s = model_scores[0]
    images = cfg['step'] * cfg['train']['batch_size']
    cfg['provenance'] = {
        'what': a.what, 'command': a.command, 'device': a.device, 'date': time.strftime('%Y-%m-%d', time.gmtime()),
        'step': cfg['step'], 'images_seen': a.prior_images + images, 'images_this_run': images,
        'wall_time_s': round(a.prior_seconds + float(cfg.get('elapsed', 0.0)), 1),
        'init': cfg['train'].get('init'),
        'scores': {
            'protocol': 'FID/KID in the Fashion-MNIST classifier space, 1000 samples vs the first 1000 test images '
                        f"(floor: train vs test {scores['floor_train_vs_test']['fid']:.2f})",
            'fid_ancestral100': round(s['ancestral 100']['fid'], 3), 'fid_ddim50': round(s['ddim 50']['fid'], 3),
            **({'bpd_test_10000': round(s['bpd']['mean'], 4),
                'bpd_95ci': [round(s['bpd']['lo'], 4), round(s['bpd']['hi'], 4)],
                'bpd_estimator': f"bpd_stratified, {s['bpd']['estimator']}, all {s['bpd']['n']} test images"}
               if 'bpd' in s else {}),
            'measured_on': f"{scores['device']}, bench/score_models.py, {scores['date']}", 'file': str(a.scores)},
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
    print(f"shipped {path} as {dest}: step {cfg['step']}, FID {cfg['provenance']['scores']['fid_ancestral100']}")


if __name__ == '__main__': main()
