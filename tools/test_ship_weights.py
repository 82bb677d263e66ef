"""Tests of tools/ship_weights.py's `checkpoint_rows` and `table_scores`: which sampler-table rows a shipped checkpoint's provenance records.

    python tools/test_ship_weights.py      # run by .ci/run
"""
import sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from ship_weights import checkpoint_rows, table_scores

CKPT = {'runs/a': Path('/r/a/ckpt-0000010'), 'runs/a/ckpt-0000010': Path('/r/a/ckpt-0000010'),
        'runs/b': Path('/r/b/ckpt-0000010')}
def fake_find(name): return CKPT[name]

def row(model='runs/a', sampler='dpm++sde', variance=None, steps=20, seed=0, fid=(10.0, 12.0), step=10, prec='auto'):
    return {'model': model, 'step': step, 'sampler': sampler, 'steps': steps, 'seed': seed, 'n': 1000,
            'precision_asked': prec, 'plan': {'variance': variance, 'precision': 'bf16'},
            'test0': {'fid': fid[0]}, 'test5000': {'fid': fid[1]}}

def test_table_scores():
    rows = [row(seed=2, fid=(12.0, 14.0)), row(seed=0), row(model='runs/a/ckpt-0000010', seed=1, fid=(11.0, 13.0)),
            row(sampler='ancestral', variance='fixedsmall', steps=100, fid=(15.0, 17.0)),
            row(model='runs/b', fid=(99.0, 99.0)),                   # another checkpoint
            row(step=9, fid=(98.0, 98.0)),                           # another step of the same run
            row(prec='fp32', fid=(97.0, 97.0))]                      # not the default precision
    s = table_scores(checkpoint_rows(rows, Path('/r/a/ckpt-0000010'), 10, fake_find))
    assert sorted(s) == ['ancestral fixedsmall 100', 'dpm++sde 20'], s
    d = s['dpm++sde 20']
    assert d['seeds'] == [0, 1, 2] and d['test0'] == [10.0, 11.0, 12.0] and d['test5000'] == [12.0, 13.0, 14.0], d
    assert s['ancestral fixedsmall 100']['test0'] == [15.0], s
    assert checkpoint_rows(rows, Path('/r/c/ckpt-0000010'), 10, fake_find) == []
    try: table_scores(checkpoint_rows(rows + [row(seed=0)], Path('/r/a/ckpt-0000010'), 10, fake_find))
    except SystemExit as e: assert 'two rows for dpm++sde 20, seed 0' in str(e)
    else: raise AssertionError('a duplicated row was not refused')

if __name__ == '__main__':
    test_table_scores(); print('ok')
