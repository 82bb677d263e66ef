"""Tests of tools/check_words.py and tools/check_sidebar.py: each flags what it must and passes what it must.

    python tools/test_checks.py      # run by .ci/run before the checks themselves
"""
import json, sys, tempfile
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import check_words, check_sidebar

PLANTED = ["That meets the issue's target.", "a small fix (issue 9)", "as issue #12 asks",
           "the target (FID at most half) is met", "targets: not met", "on a lent GPU", "the first round's recipe",
           "in two rounds of ablation", "the formula in the brief", "This session's CPU",
           "The GPU time ran out before the network was measured", "the target the project set itself",
           "the seed, `../shared/seed/`"]
CLEAN = ["The bound L = L_T + Σ L_{t-1} + L_0, checked against Monte Carlo.",
         "x ↦ round(127.5 (x + 1)), clamped to 0..255",
         "three interleaved rounds of 20 steps; the median over rounds",
         "All 256 levels survive the round trip exactly.", "In brief: predict the noise.",
         "the paper's Table 1: FID 3.17", "the metric's issue with small samples",
         "`round(v / 257)` for 16-bit images", "Adam at 1e-3; the EMA meets no warm-up"]

def test_find():
    for s in PLANTED: assert list(check_words.find(s)), f'not flagged: {s!r}'
    for s in CLEAN: assert not list(check_words.find(s)), f'flagged: {s!r}: {list(check_words.find(s))}'

def test_notebook_and_module():
    with tempfile.TemporaryDirectory() as d:
        cells = [{'cell_type': 'markdown', 'source': ['# A page\n', '\n', 'Clean prose.']},
                 {'cell_type': 'code',
                  'source': '#| hide\nx = 1  # a comment the reader sees (issue 7)\nprint("after the second round")'},
                 {'cell_type': 'code', 'source': 'def f():\n    "Return 1: the target is met."\n    return round(1.4)'},
                 # names in code are not text
                 {'cell_type': 'code', 'source': '!pip list  # a magic\nsession_id = 3'},
                 {'cell_type': 'raw', 'source': 'the lent machine'}]
        nb = Path(d) / 'x.ipynb'; nb.write_text(json.dumps({'cells': cells}))
        hits = check_words.check_file(nb)
        assert sorted((h[0].split(':cell ')[1], h[1]) for h in hits) == [('1:2', 'issue number'), ('1:3', 'round'),
                                                                         ('2:2', 'target met')], hits
        py = Path(d) / 'm.py'
        py.write_text('"""A module."""\n# clean\ndef g(round=1):\n    "From the brief."\n    return round\n')
        assert [h[1] for h in check_words.check_file(py)] == ['brief']
        py.write_text('def g(x):\n    "Round x to the nearest bin."\n    return x.round()\n')
        assert check_words.check_file(py) == []
        md = Path(d) / 'R.md'; md.write_text('# R\n\nmet the target\n\nThat meets the issue\'s target.\n')
        assert sorted({h[0].rsplit(':', 1)[1] for h in check_words.check_file(md)}) == ['3', '5']
        assert check_words.main([str(nb)]) == 1 and check_words.main([str(py)]) == 0

def test_sidebar():
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        for n in ('index', '01_a', '02_b'): (d / f'{n}.ipynb').write_text('{}')
        def side(*names): (d / 'sidebar.yml').write_text(json.dumps({'website': {'sidebar': {'contents': [
            {'section': 'Lessons', 'contents': list(names[:2])},
            {'section': 'Reports', 'contents': list(names[2:])}]}}}))
        side('index.ipynb', '01_a.ipynb', '02_b.ipynb'); assert check_sidebar.check(d) == ([], [])
        side('index.ipynb', '01_a.ipynb'); e, w = check_sidebar.check(d)
        assert len(e) == 1 and '02_b' in e[0] and not w
        side('index.ipynb', '01_a.ipynb', '02_b.ipynb', '01_a.ipynb', '09_c.ipynb'); e, w = check_sidebar.check(d)
        assert (len(e) == 1 and 'twice' not in e[0] and '2 times' in e[0]
                and w == ['09_c.ipynb: in nbs/sidebar.yml but not in nbs/'])

if __name__ == '__main__':
    for name, f in list(globals().items()):
        if name.startswith('test_'): f(); print('ok', name)
