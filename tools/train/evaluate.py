"""Evaluates a GGUF file with PyTorch: the model AND tokenizer are rebuilt from the file alone
(so this also checks the export), then

* perplexity exactly as llama-perplexity computes it: tokenize the whole text (BOS first if
  the file's add_bos_token is true), cut into floor(n / n_ctx) chunks of n_ctx tokens, run
  each chunk from an empty cache with its first token replaced by BOS when add_bos is true,
  and score only positions n_ctx/2 .. n_ctx-2 predicting the next token; PPL = exp(mean NLL).
* unigram perplexity of the same scored tokens: p(t) = (count_train(t) + 1) / (N_train + V),
  counts from the train split tokenized with the same tokenizer (add-one smoothing).
* routing share per layer: the fraction of all top-k assignments (every position of every
  chunk) that goes to each expert.
* a short seeded sample, to see that the text is English.
"""
import argparse, json, math, os, sys

os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')
os.environ.setdefault('OPENBLAS_NUM_THREADS', '1')

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bpe
import data
import export
import gguf
import model as M


def load(path):
    meta, tensors = gguf.read_gguf(path)
    arch = meta['general.architecture']
    g = lambda k, d=None: meta.get(arch + '.' + k, d)
    qwen = arch == 'qwen2moe'
    c = dict(arch=arch, n_vocab=len(meta['tokenizer.ggml.tokens']), n_embd=g('embedding_length'),
             n_layer=g('block_count'), n_head=g('attention.head_count'), n_head_kv=g('attention.head_count_kv'),
             n_expert=g('expert_count'), n_expert_used=g('expert_used_count'),
             n_ff_exp=g('expert_feed_forward_length') if qwen else g('feed_forward_length'),
             n_ff_shexp=g('expert_shared_feed_forward_length', 0), rope='neox' if qwen else 'norm',
             rope_base=g('rope.freq_base'), rms_eps=g('attention.layer_norm_rms_epsilon'), qkv_bias=qwen,
             renorm_topk=not qwen, add_bos=bool(meta['tokenizer.ggml.add_bos_token']), ctx=g('context_length'),
             pre=meta['tokenizer.ggml.pre'])
    m = M.MoELM(c)
    sd = {}
    for name, key, _ in export.tensor_names(c):
        sd[key] = torch.from_numpy(np.array(tensors[name][2], dtype=np.float32))
    m.load_state_dict(sd)
    m.eval()
    tok = bpe.Tokenizer(meta['tokenizer.ggml.tokens'], meta['tokenizer.ggml.merges'], c['pre'],
                        meta['tokenizer.ggml.bos_token_id'], meta['tokenizer.ggml.eos_token_id'], c['add_bos'])
    return c, m, tok


@torch.no_grad()
def perplexity(c, m, ids, n_ctx, bos, batch=16):
    n_chunk = len(ids) // n_ctx
    first = n_ctx // 2
    chunks = torch.tensor(np.array(ids[:n_chunk * n_ctx], dtype=np.int64).reshape(n_chunk, n_ctx))
    targets = chunks[:, first + 1:].clone()   # tokens predicted by positions first .. n_ctx-2
    inp = chunks.clone()
    if c['add_bos']:
        inp[:, 0] = bos
    nll, counts = 0.0, np.zeros((c['n_layer'], c['n_expert']), np.int64)
    for i in range(0, n_chunk, batch):
        stats = []
        logits = m(inp[i:i + batch], stats)
        lp = F.log_softmax(logits[:, first:n_ctx - 1].double(), dim=-1)
        nll -= lp.gather(-1, targets[i:i + batch].unsqueeze(-1)).sum().item()
        for layer, (_, idx, _) in enumerate(stats):
            counts[layer] += np.bincount(idx.reshape(-1).numpy(), minlength=c['n_expert'])
    n_scored = n_chunk * (n_ctx - 1 - first)
    return math.exp(nll / n_scored), n_chunk, n_scored, targets.reshape(-1).numpy(), counts


@torch.no_grad()
def sample(m, tok, prompt, n, seed, temp=0.8, top_k=40):
    g = torch.Generator().manual_seed(seed)
    ids = tok.encode(prompt)
    for _ in range(n):
        logits = m(torch.tensor([ids[-m.c['ctx']:]]))[0, -1] / temp
        v, i = logits.topk(top_k)
        ids.append(int(i[torch.multinomial(torch.softmax(v, -1), 1, generator=g)]))
    return tok.decode(ids)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('gguf')
    ap.add_argument('--text', default='models/test.txt')
    ap.add_argument('--n-ctx', type=int, default=256)
    ap.add_argument('--cache', default='tools/.cache')
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--json', default=None)
    ap.add_argument('--prompt', default='The jury said that')
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    c, m, tok = load(a.gguf)
    text = open(a.text, encoding='utf-8').read()
    ids = tok.encode(text)   # BOS first iff add_bos_token
    ppl, n_chunk, n_scored, targets, counts = perplexity(c, m, ids, a.n_ctx, tok.bos)
    train_ids = data.token_ids(tok, 'train', a.cache)
    freq = np.bincount(train_ids, minlength=c['n_vocab']).astype(np.float64)
    p = (freq + 1) / (freq.sum() + c['n_vocab'])
    uni = math.exp(-np.log(p[targets]).mean())
    share = counts / counts.sum(1, keepdims=True)
    res = {'gguf': os.path.basename(a.gguf), 'n_ctx': a.n_ctx, 'n_tokens': len(ids), 'n_chunks': n_chunk,
           'n_scored': n_scored, 'ppl': ppl, 'unigram_ppl': uni, 'routing_share': share.tolist(),
           'min_share': float(share.min()), 'sample_prompt': a.prompt,
           'sample': sample(m, tok, a.prompt, 60, seed=7)}
    print('%s: ppl %.4f over %d chunks (%d scored tokens of %d); unigram ppl %.2f; min expert share %.2f%%'
          % (res['gguf'], ppl, n_chunk, n_scored, len(ids), uni, 100 * res['min_share']))
    for layer, row in enumerate(share):
        print('  layer %d shares %%: %s' % (layer, ' '.join('%.1f' % (100 * x) for x in row)))
    print('  sample: ' + res['sample'].replace('\n', '\\n'))
    if a.json:
        with open(a.json, 'w') as f:
            json.dump(res, f, indent=1)


if __name__ == '__main__':
    main()
