"""Check that the docs sidebar (nbs/sidebar.yml) lists every notebook, each once.

    python tools/check_sidebar.py     # exit 1 if a notebook in nbs/ is missing from the sidebar or listed twice

settings.ini has custom_sidebar = True, so nbdev does not add a new notebook to the sidebar by itself; without
this check a new page would be built but unreachable from the site's navigation. An entry whose notebook does
not exist is reported as a warning (Quarto skips it).
"""
import sys
from collections import Counter
from pathlib import Path
import yaml

def entries(node):
    "Every file named in a Quarto sidebar `contents` tree."
    if isinstance(node, str): yield node
    elif isinstance(node, dict):
        if 'href' in node: yield node['href']
        yield from entries(node.get('contents', []))
    elif isinstance(node, list):
        for n in node: yield from entries(n)

def check(nbs):
    nbs = Path(nbs)
    listed = list(entries(yaml.safe_load((nbs / 'sidebar.yml').read_text())['website']['sidebar']['contents']))
    present = {p.name for p in nbs.glob('*.ipynb')}
    errors = [f'{n}: not in nbs/sidebar.yml (add it to its shelf)' for n in sorted(present - set(listed))]
    errors += [f'{n}: listed {k} times in nbs/sidebar.yml' for n, k in Counter(listed).items() if k > 1]
    warnings = [f'{n}: in nbs/sidebar.yml but not in nbs/' for n in listed if n not in present]
    return errors, warnings

if __name__ == '__main__':
    errors, warnings = check(Path(__file__).resolve().parent.parent / 'nbs')
    for w in warnings: print('warning:', w)
    for e in errors: print('FAIL:', e)
    sys.exit(1 if errors else 0)
