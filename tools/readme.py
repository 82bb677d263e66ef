"""Write README.md from nbs/index.ipynb, or check that it is up to date.

    python tools/readme.py           # write README.md
    python tools/readme.py --check   # exit 1 if README.md is not what the notebook gives (CI)

nbdev_readme would render the index through Quarto, which CI does not install; this gives the same page as
plain markdown: markdown cells as they are (image paths made relative to the repository root), code cells
that are not `#| hide` as Python blocks followed by their saved text output.
"""
import json, re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEADER = ('<!-- generated from nbs/index.ipynb by tools/readme.py: edit the notebook, '
          'then run `python tools/readme.py` -->\n')

def _src(cell): return ''.join(cell['source']) if isinstance(cell['source'], list) else cell['source']

def _output_text(cell):
    parts = []
    for o in cell.get('outputs', []):
        if o.get('output_type') == 'stream': parts.append(''.join(o['text']))
        elif 'data' in o and 'text/plain' in o['data']: parts.append(''.join(o['data']['text/plain']))
    return ''.join(parts).rstrip('\n')

def render(nb_path=ROOT / 'nbs' / 'index.ipynb'):
    "The README's text from the index notebook."
    blocks = []
    for cell in json.loads(Path(nb_path).read_text())['cells']:
        src = _src(cell).strip('\n')
        if cell['cell_type'] == 'markdown':
            blocks.append(re.sub(r'\]\((?!https?:|/|#)images/', '](nbs/images/', src))
        elif cell['cell_type'] == 'code':
            if src.lstrip().startswith('#| hide') or not src.strip(): continue
            code = '\n'.join(l for l in src.splitlines() if not l.startswith('#|'))
            blocks.append(f'```python\n{code}\n```')
            out = _output_text(cell)
            if out: blocks.append('\n'.join('    ' + l for l in out.splitlines()))
    return HEADER + '\n' + '\n\n'.join(blocks) + '\n'

def main(argv):
    text, readme = render(), ROOT / 'README.md'
    if '--check' in argv:
        if readme.read_text() != text:
            print('README.md is not what nbs/index.ipynb gives: edit the notebook, then run python tools/readme.py')
            return 1
        print('README.md matches nbs/index.ipynb'); return 0
    readme.write_text(text); return 0

if __name__ == '__main__': sys.exit(main(sys.argv[1:]))
