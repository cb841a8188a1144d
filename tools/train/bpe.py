"""Byte-level BPE: training on a text, and encoding exactly as llama.cpp's `gpt2` tokenizer does.

Token list layout (what real byte-level checkpoints carry): the 256 byte symbols first, in
byte order, written with the GPT-2 byte->unicode mapping; then one token per merge in merge
order; then the special tokens. Merges are stored as "left right" strings.
"""
import heapq
import json
from collections import Counter, defaultdict

import regex

# Pre-tokenizer regexes of llama.cpp's `tokenizer.ggml.pre` values; the BPE is trained with
# the same split the GGUF declares, so no merge ever crosses a boundary jmoe would cut.
PRE_REGEX = {
    'gpt-2': r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""",
    'qwen2': r"""(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""",
}

SPECIALS = ['<|endoftext|>', '<|im_start|>', '<|im_end|>']
TT_NORMAL, TT_CONTROL = 1, 3


def bytes_to_unicode():
    """GPT-2's reversible byte -> printable character mapping: printable Latin-1 bytes map to
    themselves, the remaining 68 bytes to U+0100 onwards, in byte order."""
    keep = list(range(ord('!'), ord('~') + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    m, n = {}, 0
    for b in range(256):
        if b in keep:
            m[b] = chr(b)
        else:
            m[b] = chr(256 + n)
            n += 1
    return m


B2U = bytes_to_unicode()
U2B = {u: b for b, u in B2U.items()}


def pretokenize(text, pre):
    return regex.findall(PRE_REGEX[pre], text)


def to_symbols(word):
    return ''.join(B2U[b] for b in word.encode('utf-8'))


def train_bpe(text, pre, vocab_size, log=print):
    """Greedy BPE over pre-token counts. Each step merges the most frequent adjacent pair;
    ties go to the lexicographically smallest pair so the result is deterministic.
    Stops when 256 + new tokens + specials == vocab_size."""
    counts = Counter(pretokenize(text, pre))
    words = [list(to_symbols(w)) for w in counts]
    freq = list(counts.values())
    pair_n = defaultdict(int)
    where = defaultdict(set)
    for i, w in enumerate(words):
        for p in zip(w, w[1:]):
            pair_n[p] += freq[i]
            where[p].add(i)
    heap = [(-n, p) for p, n in pair_n.items()]
    heapq.heapify(heap)
    vocab = set(B2U.values())
    merges = []
    target = vocab_size - len(SPECIALS)
    while len(vocab) < target and heap:
        negn, p = heapq.heappop(heap)
        if pair_n.get(p, 0) != -negn or negn == 0:
            continue  # stale heap entry
        merges.append(p)
        vocab.add(p[0] + p[1])   # may already exist (e.g. "ab"+"c" after "a"+"bc"): then no new token
        changed = set()
        for i in sorted(where.pop(p)):
            w, f = words[i], freq[i]
            for q in zip(w, w[1:]):
                pair_n[q] -= f
                changed.add(q)
            out, j = [], 0
            while j < len(w):
                if j + 1 < len(w) and w[j] == p[0] and w[j + 1] == p[1]:
                    out.append(p[0] + p[1])
                    j += 2
                else:
                    out.append(w[j])
                    j += 1
            words[i] = out
            for q in zip(out, out[1:]):
                pair_n[q] += f
                where[q].add(i)
                changed.add(q)
        pair_n.pop(p, None)
        for q in changed:
            if q != p and pair_n.get(q, 0) > 0:
                heapq.heappush(heap, (-pair_n[q], q))
        if len(merges) % 500 == 0:
            log('bpe: %d merges, vocab %d' % (len(merges), len(vocab)))
    return merges


class Tokenizer:
    def __init__(self, tokens, merges, pre, bos, eos, add_bos):
        self.tokens, self.pre = tokens, pre
        self.ids = {t: i for i, t in enumerate(tokens)}
        self.ranks = {tuple(m.split(' ')): r for r, m in enumerate(merges)}
        self.bos, self.eos, self.add_bos = bos, eos, add_bos
        self.cache = {}

    @staticmethod
    def build(merges, pre, add_bos):
        """Token list from merges (see module doc); returns a Tokenizer."""
        tokens = [B2U[b] for b in range(256)]
        seen = set(tokens)
        for a, b in merges:
            if a + b not in seen:
                seen.add(a + b)
                tokens.append(a + b)
        bos = eos = len(tokens)
        tokens += SPECIALS
        return Tokenizer(tokens, ['%s %s' % m for m in merges], pre, bos, eos, add_bos)

    def token_types(self):
        return [TT_CONTROL if t in SPECIALS else TT_NORMAL for t in self.tokens]

    def merges(self):
        return [' '.join(p) for p, _ in sorted(self.ranks.items(), key=lambda kv: kv[1])]

    def _bpe(self, word):
        """Repeatedly merge the adjacent pair of lowest rank (leftmost on ties), like llama.cpp."""
        sym = list(to_symbols(word))
        while len(sym) > 1:
            best, bi = None, -1
            for i in range(len(sym) - 1):
                r = self.ranks.get((sym[i], sym[i + 1]))
                if r is not None and (best is None or r < best):
                    best, bi = r, i
            if best is None:
                break
            sym[bi:bi + 2] = [sym[bi] + sym[bi + 1]]
        return [self.ids[s] for s in sym]

    def encode(self, text, add_bos=None):
        out = [self.bos] if (self.add_bos if add_bos is None else add_bos) else []
        for w in pretokenize(text, self.pre):
            ids = self.cache.get(w)
            if ids is None:
                ids = self.cache[w] = self._bpe(w)
            out.extend(ids)
        return out

    def decode(self, ids):
        b = bytearray()
        for i in ids:
            t = self.tokens[i]
            if t in SPECIALS:
                continue
            b.extend(U2B[c] for c in t)
        return b.decode('utf-8', errors='replace')

    def save(self, path):
        with open(path, 'w', encoding='utf-8') as f:
            json.dump({'pre': self.pre, 'tokens': self.tokens, 'merges': self.merges(),
                       'bos': self.bos, 'eos': self.eos, 'add_bos': self.add_bos}, f)

    @staticmethod
    def load(path):
        with open(path, encoding='utf-8') as f:
            d = json.load(f)
        return Tokenizer(d['tokens'], d['merges'], d['pre'], d['bos'], d['eos'], d['add_bos'])
