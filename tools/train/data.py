"""Tokenizer and token-id caches shared by training and evaluation (all under tools/.cache)."""
import hashlib
import os

import numpy as np

import bpe

VOCAB = 4096


def tokenizer_for(pre, add_bos, cache):
    """Trains (once) the BPE for a pre-tokenizer on the train split and caches it; the result
    depends only on the train text and `pre`, so it is reproducible."""
    path = os.path.join(cache, 'tok-%s.json' % pre)
    if not os.path.exists(path):
        text = open(os.path.join(cache, 'data', 'train.txt'), encoding='utf-8').read()
        merges = bpe.train_bpe(text, pre, VOCAB)
        bpe.Tokenizer.build(merges, pre, False).save(path)
    tok = bpe.Tokenizer.load(path)
    tok.add_bos = add_bos
    assert len(tok.tokens) == VOCAB
    return tok


def token_ids(tok, split, cache):
    """Token ids of a whole split (tokenized in one piece, no BOS), cached as uint16."""
    text_path = os.path.join(cache, 'data', split + '.txt')
    text = open(text_path, encoding='utf-8').read()
    key = hashlib.sha256((tok.pre + '\0' + ''.join(tok.merges()[:50]) + text).encode()).hexdigest()[:12]
    path = os.path.join(cache, 'ids-%s-%s-%s.npy' % (tok.pre, split, key))
    if not os.path.exists(path):
        np.save(path, np.array(tok.encode(text, add_bos=False), dtype=np.uint16))
    return np.load(path)
