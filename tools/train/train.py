"""Trains one of the MoE models of model.CONFIGS on the train split, on CPU.

Deterministic given --seed (torch RNG for init and batch sampling); the step count is fixed
so the learning-rate schedule does not depend on machine speed.
Loss = next-token cross-entropy + aux_coef * load-balancing loss (Switch Transformer form,
n_expert * sum_e f_e * P_e per layer, averaged over layers; f_e = share of top-k assignments,
P_e = mean router probability) + z_coef * router z-loss (keeps router logits small, which
makes routing less sensitive to the F16/Q8_0 rounding of the exported inputs)
+ kl_coef * KL(uniform || mean router probability) (0 unless asked; see aux_losses).
"""
import argparse, json, math, os, sys, time

# Must be set before torch loads its thread pools. On a shared 2-core machine, spinning OpenMP
# workers and nested OpenBLAS threads tripled the CPU time per step; passive waiting and
# single-threaded BLAS calls (torch still splits element-wise work over 2 threads) fix that.
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')
os.environ.setdefault('OPENBLAS_NUM_THREADS', '1')

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data
import model as M


def aux_losses(stats, n_expert, k):
    """Switch balancing loss, router z-loss, and KL(uniform || mean router probability).
    The Switch loss pushes overloaded experts down but barely lifts an expert that is almost
    never chosen (its gradient scales with that expert's probability); the KL term's gradient
    grows as 1/P_e, so it revives such experts."""
    bal, z, kl = 0.0, 0.0, 0.0
    for probs, idx, logits in stats:
        f = torch.bincount(idx.reshape(-1), minlength=n_expert).float() / idx.numel()
        pm = probs.mean(0)
        bal = bal + n_expert * (f * pm).sum()
        z = z + torch.logsumexp(logits, dim=-1).pow(2).mean()
        kl = kl - torch.log(n_expert * pm + 1e-9).mean()
    return bal / len(stats), z / len(stats), kl / len(stats)


def batch(ids, B, T, gen, bos):
    starts = torch.randint(0, len(ids) - T - 1, (B,), generator=gen).numpy()
    chunk = np.stack([ids[s:s + T + 1] for s in starts]).astype(np.int64)
    x, y = torch.from_numpy(chunk[:, :-1]).clone(), torch.from_numpy(chunk[:, 1:])
    if bos is not None:
        x[:, 0] = bos  # like llama-perplexity: a window starts with BOS in place of its first token
    return x, y


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--model', required=True, choices=sorted(M.CONFIGS))
    ap.add_argument('--steps', type=int, default=300)
    ap.add_argument('--batch', type=int, default=16)
    ap.add_argument('--seq', type=int, default=256)
    ap.add_argument('--lr', type=float, default=2.5e-3)
    ap.add_argument('--min-lr-frac', type=float, default=0.1)
    ap.add_argument('--warmup', type=int, default=30)
    ap.add_argument('--wd', type=float, default=0.1)
    ap.add_argument('--aux-coef', type=float, default=0.01)
    ap.add_argument('--z-coef', type=float, default=1e-3)
    ap.add_argument('--kl-coef', type=float, default=0.0)
    ap.add_argument('--seed', type=int, default=1234)
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--eval-every', type=int, default=50)
    ap.add_argument('--cache', default='tools/.cache')
    ap.add_argument('--out', default=None, help='checkpoint path (default tools/.cache/ckpt/<model>.pt)')
    ap.add_argument('--init', default=None,
                    help='continue from this checkpoint (a further phase with its own schedule and losses)')
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    c = dict(M.CONFIGS[a.model])
    c['ctx'] = a.seq
    tok = data.tokenizer_for(c['pre'], c['add_bos'], a.cache)
    bos = tok.bos if c['add_bos'] else None
    t0 = time.time()
    train_ids, valid_ids = data.token_ids(tok, 'train', a.cache), data.token_ids(tok, 'valid', a.cache)
    print('tokens: train %d valid %d (%.0fs)' % (len(train_ids), len(valid_ids), time.time() - t0), flush=True)

    model = M.MoELM(c)
    model.init_weights(a.seed)
    prev = None
    if a.init:
        prev = torch.load(a.init)
        model.load_state_dict(prev['state'])
        print('continuing from %s (%d earlier steps)' % (a.init, sum(p['steps'] for p in prev['phases'])), flush=True)
    offset = sum(p['steps'] for p in prev['phases']) if prev else 0
    total, routed, shared, active = M.param_counts(model)
    print('model %s: params total %d, routed experts %d, shared expert %d, active/token %d'
          % (a.model, total, routed, shared, active), flush=True)
    print('args ' + json.dumps(vars(a)), flush=True)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{'params': decay, 'weight_decay': a.wd}, {'params': no_decay, 'weight_decay': 0.0}],
                            lr=a.lr, betas=(0.9, 0.95), eps=1e-8, foreach=True)

    def lr_at(step):  # linear warmup, then cosine down to min_lr_frac * lr
        if step < a.warmup:
            return a.lr * (step + 1) / a.warmup
        p = (step - a.warmup) / max(1, a.steps - a.warmup)
        return a.lr * (a.min_lr_frac + (1 - a.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * p)))

    gen = torch.Generator().manual_seed(a.seed + 1)
    vgen = torch.Generator().manual_seed(a.seed + 2)
    val_batches = [batch(valid_ids, 16, a.seq, vgen, bos) for _ in range(4)]

    def validate():
        model.eval()
        with torch.no_grad():
            ls = [F.cross_entropy(model(x).reshape(-1, c['n_vocab']), y.reshape(-1)).item() for x, y in val_batches]
        model.train()
        return float(np.mean(ls))

    hist = []
    t_start = time.time()
    for step in range(a.steps + 1):
        if step % a.eval_every == 0 or step == a.steps:
            vl = validate()
            hist.append({'step': offset + step, 'val_loss': vl, 'time': time.time() - t_start})
            print('step %5d  val_loss %.4f  (ppl %.1f)  elapsed %.1f min' % (step, vl, math.exp(vl), (time.time() - t_start) / 60), flush=True)
        if step == a.steps:
            break
        for g in opt.param_groups:
            g['lr'] = lr_at(step)
        x, y = batch(train_ids, a.batch, a.seq, gen, bos)
        stats = []
        logits = model(x, stats)
        ce = F.cross_entropy(logits.reshape(-1, c['n_vocab']), y.reshape(-1))
        bal, z, kl = aux_losses(stats, c['n_expert'], c['n_expert_used'])
        loss = ce + a.aux_coef * bal + a.z_coef * z + a.kl_coef * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 10 == 0:
            el = time.time() - t_start
            # smallest per-expert share of the batch's assignments over all layers
            mins = min(float(torch.bincount(i.reshape(-1), minlength=c['n_expert']).min()) / i.numel() for _, i, _ in stats)
            hist.append({'step': offset + step, 'loss': ce.item(), 'aux': bal.item(), 'z': z.item(), 'time': el})
            print('step %5d  loss %.4f  aux %.4f  z %.2f  min-share %.2f%%  gnorm %.2f  lr %.2e  %.0f tok/s  elapsed %.1f min'
                  % (step, ce.item(), bal.item(), z.item(), 100 * mins, gn.item(), lr_at(step),
                     (step + 1) * a.batch * a.seq / el, el / 60), flush=True)
    train_min = (time.time() - t_start) / 60
    print('done: %d steps, %d tokens seen, %.1f min' % (a.steps, a.steps * a.batch * a.seq, train_min), flush=True)
    out = a.out or os.path.join(a.cache, 'ckpt', a.model + '.pt')
    os.makedirs(os.path.dirname(out), exist_ok=True)
    phases = (prev['phases'] if prev else []) + [vars(a)]
    hist = (prev['hist'] if prev else []) + hist
    train_min += prev['train_minutes'] if prev else 0
    torch.save({'config': c, 'state': model.state_dict(), 'hist': hist, 'args': vars(a), 'phases': phases,
                'train_minutes': train_min, 'params': [total, routed, shared, active],
                'tokenizer': os.path.join(a.cache, 'tok-%s.json' % c['pre'])}, out)
    print('saved ' + out, flush=True)


if __name__ == '__main__':
    main()
