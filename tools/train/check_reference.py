"""Checks the training tools' math against llama.cpp's outputs in shared/llamacpp-reference:
the tokenizer (token ids of prompt.txt), the forward pass (all logits of the prompt) and the
perplexity procedure (sample.txt, n_ctx 256). If these agree, a model trained with model.py
and exported by export.py means the same thing to llama.cpp (and so to jmoe)."""
import os, sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bpe
import evaluate
import gguf

REF = os.environ.get('JMOE_REF', os.path.join(os.path.dirname(__file__), '../../../shared/llamacpp-reference'))


def main():
    torch.set_num_threads(1)
    name = 'tiny_mixtral_f16'
    c, m, tok = evaluate.load(os.path.join(REF, 'models', name + '.gguf'))
    # llama.cpp's tools drop the prompt file's trailing newline
    prompt = open(os.path.join(REF, 'prompt.txt'), encoding='utf-8').read().rstrip('\n')
    want = [int(x) for x in open(os.path.join(REF, 'expected', name, 'tokens.txt')).read().split()]
    print('gpt-2 pre-tokenizer + BPE, tokens match llama.cpp:', tok.encode(prompt) == want)
    # qwen2 pre-tokenizer (no BOS), from the qwen3moe file's vocabulary
    meta, _ = gguf.read_gguf(os.path.join(REF, 'models', 'tiny_qwen3moe_q8_0.gguf'), load_tensors=False)
    qtok = bpe.Tokenizer(meta['tokenizer.ggml.tokens'], meta['tokenizer.ggml.merges'], meta['tokenizer.ggml.pre'],
                         meta['tokenizer.ggml.bos_token_id'], meta['tokenizer.ggml.eos_token_id'],
                         meta['tokenizer.ggml.add_bos_token'])
    qwant = [int(x) for x in open(os.path.join(REF, 'expected', 'tiny_qwen3moe_q8_0', 'tokens.txt')).read().split()]
    print('qwen2 pre-tokenizer + BPE, tokens match llama.cpp:', qtok.encode(prompt) == qwant)
    rows = [l.split() for l in open(os.path.join(REF, 'expected', name + '_deq_f32', 'logits_all.txt'))
            if not l.startswith('#')]
    ref = np.array([[float(x) for x in r[2:]] for r in rows], np.float32)
    with torch.no_grad():
        logits = m(torch.tensor([want]))[0].numpy()
    print('max |logit - llama.cpp (F32 copy)|: %.2e' % np.abs(logits - ref).max())
    text = open(os.path.join(REF, 'sample.txt'), encoding='utf-8').read()
    ppl, n_chunk, *_ = evaluate.perplexity(c, m, tok.encode(text), 256, tok.bos)
    line = [l for l in open(os.path.join(REF, 'expected', name, 'ppl.txt')) if l.startswith('Final estimate')][0]
    ref_ppl = float(line.split('=')[1].split('+/-')[0])
    print('perplexity %.4f over %d chunks; llama.cpp (F16 run) %.4f; relative diff %.4f%%'
          % (ppl, n_chunk, ref_ppl, 100 * abs(ppl / ref_ppl - 1)))


if __name__ == '__main__':
    main()
