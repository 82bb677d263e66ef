"""Fail on words about how the project was organised in text a user reads.

    python tools/check_words.py                 # README.md, nbs/**/*.ipynb, ddpm_nb/*.py; exit 1 on any hit
    python tools/check_words.py FILE ...        # only these files

A reader of the README, the notebooks or a docstring needs the mathematics, the code and the results with the
machine, command and date that reproduce them; not issue numbers, rounds of work, lent machines or targets
met. What is read: README and other markdown files whole; a notebook's markdown cells, and its code cells'
comments and string literals (docstrings and printed text; `#|` directives are skipped); a module's comments
and string literals. Each hit prints as `path:cell:line: phrase | the line`.
"""
import io, json, re, sys, tokenize
from pathlib import Path

# (name, pattern): kept short on purpose; each is a phrase about the project's organisation, not about DDPM
PATTERNS = [
    ('issue number', r"\bissues?\s*#?\s*\d+\b|\(#\d+\)"),
    ('the issue',    r"\bthe issue(?:'s)?\b(?!\s+(?:of|with|is that))"),
    ('lent',         r"\blent\b"),
    ('round',        r"\b(?:first|second|third|fourth|next|last|later|earlier|previous|this|that|two|three|each)"
                     r"\s+rounds?\b"
                     r"|\brounds?\s+of\s+(?:ablation|work|review|experiments?)\b"),
    ('brief',        r"\bthe brief\b|\bbrief(?:'s)?\s+(?:formula|says|asks)\b"),
    ('target met',   r"\btargets?\b[^.|\n]{0,80}?\b(?:met|meets|not met|missed)\b"
                     r"|\b(?:meets?|met)\b[^.|\n]{0,40}\btargets?\b"),
    ('session',      r"\bsessions?\b"),
    ('project history', r"\bthe project set itself\b|\bran out\b|\bhelpers?\b(?=[^.\n]{0,40}\b(?:wrote|ran|worked)\b)"
                        r"|\.\./shared/|\bshared/seed\b"),
]
RX = [(name, re.compile(p, re.I)) for name, p in PATTERNS]

def find(text):
    "Yield (line_no, name, phrase, line) for every hit in `text` (line numbers 1-based)."
    for i, line in enumerate(text.splitlines(), 1):
        for name, rx in RX:
            for m in rx.finditer(line): yield i, name, m.group(0), line.strip()

def _code_text(src):
    "The comments and string literals of Python source, keeping their lines; `#|` directives dropped."
    lines = src.splitlines()
    keep = [''] * len(lines)
    clean = '\n'.join('' if l.lstrip().startswith(('!', '%')) else l for l in lines)   # IPython magics
    try:
        for tok in tokenize.generate_tokens(io.StringIO(clean + '\n').readline):
            if tok.type == tokenize.COMMENT and tok.string.startswith('#|'): continue
            if tok.type in (tokenize.COMMENT, tokenize.STRING) or tok.type == getattr(tokenize, 'FSTRING_MIDDLE', -1):
                for k, part in enumerate(tok.string.splitlines()):
                    r = tok.start[0] - 1 + k
                    if r < len(keep): keep[r] += ' ' + part
    except (tokenize.TokenError, IndentationError, SyntaxError):   # not plain Python: read every comment-like line
        keep = [l if l.lstrip().startswith('#') and not l.lstrip().startswith('#|') else '' for l in lines]
    return '\n'.join(keep)

def check_file(path):
    "Every hit in one file, as (where, name, phrase, line)."
    path = Path(path); out = []
    if path.suffix == '.ipynb':
        nb = json.loads(path.read_text())
        for ci, cell in enumerate(nb['cells']):
            src = ''.join(cell['source']) if isinstance(cell['source'], list) else cell['source']
            text = src if cell['cell_type'] == 'markdown' else _code_text(src) if cell['cell_type'] == 'code' else ''
            out += [(f'{path}:cell {ci}:{ln}', n, p, l) for ln, n, p, l in find(text)]
    elif path.suffix == '.py':
        out += [(f'{path}:{ln}', n, p, l) for ln, n, p, l in find(_code_text(path.read_text()))]
    else:
        out += [(f'{path}:{ln}', n, p, l) for ln, n, p, l in find(path.read_text())]
    return out

def default_files(root):
    root = Path(root)
    nbs = sorted(p for p in (root / 'nbs').rglob('*.ipynb')
                 if '.ipynb_checkpoints' not in p.parts and '_proc' not in p.parts)
    return [root / 'README.md', *nbs, *sorted((root / 'ddpm_nb').glob('*.py'))]

def main(argv):
    root = Path(__file__).resolve().parent.parent
    files = [Path(a) for a in argv] or default_files(root)
    hits = [h for f in files if Path(f).exists() for h in check_file(f)]
    for where, name, phrase, line in hits: print(f'{where}: {name} "{phrase}" | {line[:160]}')
    if hits:
        print(f'\n{len(hits)} phrase(s) about the project, not for the reader: reword them (see tools/check_words.py)')
    return 1 if hits else 0

if __name__ == '__main__': sys.exit(main(sys.argv[1:]))
