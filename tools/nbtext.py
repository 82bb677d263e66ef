"""Round-trip notebooks through a plain-text form that is easy to edit and diff.

    python tools/nbtext.py to-nb  draft.txt nbs/01_forward.ipynb   # text -> notebook (outputs dropped)
    python tools/nbtext.py to-txt nbs/01_forward.ipynb draft.txt   # notebook -> text

The text form: cells start at a line `# %%` (code) or `# %% [md]` (markdown); markdown is written raw
(no comment prefixes), so LaTeX reads as it renders. Everything before the first marker is ignored.
"""
import hashlib, json, re, sys
from pathlib import Path

MARK = re.compile(r'^# %%( \[md\])?\s*$')

def txt2cells(text):
    cells, cur = [], None
    for line in text.splitlines():
        m = MARK.match(line)
        if m:
            if cur is not None: cells.append(cur)
            cur = {'kind': 'markdown' if m.group(1) else 'code', 'lines': []}
        elif cur is not None: cur['lines'].append(line)
    if cur is not None: cells.append(cur)
    out = []
    for i, c in enumerate(cells):
        lines = c['lines']
        while lines and not lines[-1].strip(): lines.pop()
        while lines and not lines[0].strip(): lines.pop(0)
        src = '\n'.join(lines)
        cid = hashlib.sha1(f'{i}:{src}'.encode()).hexdigest()[:8]   # deterministic, so exports are reproducible
        cell = {'cell_type': c['kind'], 'id': cid, 'metadata': {}, 'source': src}
        if c['kind'] == 'code': cell.update(execution_count=None, outputs=[])
        out.append(cell)
    return out

def to_nb(src, dest):
    nb = {'cells': txt2cells(Path(src).read_text()),
          'metadata': {'kernelspec': {'display_name': 'python3', 'language': 'python', 'name': 'python3'}},
          'nbformat': 4, 'nbformat_minor': 5}
    Path(dest).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + '\n')

def to_txt(src, dest):
    nb = json.loads(Path(src).read_text())
    parts = []
    for c in nb['cells']:
        s = c['source'] if isinstance(c['source'], str) else ''.join(c['source'])
        parts.append(('# %% [md]' if c['cell_type'] == 'markdown' else '# %%') + '\n' + s + '\n')
    Path(dest).write_text('\n'.join(parts))

if __name__ == '__main__':
    cmd, src, dest = sys.argv[1:4]
    {'to-nb': to_nb, 'to-txt': to_txt}[cmd](src, dest)
