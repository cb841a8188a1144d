"""The two MoE transformer variants, written to compute exactly what llama.cpp (and jmoe)
compute for the GGUF architectures `qwen2moe` and `llama` (Mixtral-style), so a trained
model exported as-is means the same thing in both.

Parameter tensors are kept in GGUF's numpy order (a Linear weight is [out, in]; stacked
experts are [n_expert, n_ff, n_embd] for gate/up and [n_expert, n_embd, n_ff] for down),
so export is a plain copy with no transposes or permutations.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

CONFIGS = {
    # Fine-grained experts plus a shared expert (Qwen2-MoE / DeepSeek-MoE setting). The shared
    # expert is as wide as the 4 active routed experts together, the same ratio as
    # Qwen1.5-MoE-A2.7B (shared 5632 = 4 x 1408).
    'qwen2moe-tiny': dict(
        arch='qwen2moe', n_vocab=4096, n_embd=256, n_layer=6, n_head=4, n_head_kv=2,
        n_expert=32, n_expert_used=4, n_ff_exp=32, n_ff_shexp=128,
        rope='neox', rope_base=10000.0, rms_eps=1e-6, qkv_bias=True, renorm_topk=False,
        pre='qwen2', add_bos=False, ctx=512,
        # With the usual 0.02 the token embedding was swamped by the attention layers' nearly
        # position-averaged (so token-independent) output and training sat at the unigram loss
        # (6.9 nats after 60 steps); unit-scale embeddings keep the token identity visible.
        embd_std=1.0),
    # Coarse experts (Mixtral setting).
    'mixtral-tiny': dict(
        arch='llama', n_vocab=4096, n_embd=256, n_layer=5, n_head=4, n_head_kv=2,
        n_expert=8, n_expert_used=2, n_ff_exp=256, n_ff_shexp=0,
        rope='norm', rope_base=10000.0, rms_eps=1e-5, qkv_bias=False, renorm_topk=True,
        pre='gpt-2', add_bos=True, ctx=512, embd_std=0.02),
}


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope_tables(n_pos, head_dim, base, device=None):
    # theta_i = pos * base^(-2i/head_dim), i in [0, head_dim/2): the same for both styles.
    inv = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
    ang = torch.arange(n_pos, dtype=torch.float64)[:, None] * inv[None, :]
    return ang.cos().float(), ang.sin().float()


def apply_rope(x, cos, sin, style):
    """x: [B, H, T, hd]. `norm` (llama) rotates adjacent pairs (2i, 2i+1); `neox` (qwen2)
    rotates (i, i + hd/2)."""
    if style == 'norm':
        x0, x1 = x[..., 0::2], x[..., 1::2]
        r0, r1 = x0 * cos - x1 * sin, x0 * sin + x1 * cos
        return torch.stack((r0, r1), dim=-1).flatten(-2)
    h = x.shape[-1] // 2
    x0, x1 = x[..., :h], x[..., h:]
    return torch.cat((x0 * cos - x1 * sin, x0 * sin + x1 * cos), dim=-1)


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        D, hd = c['n_embd'], c['n_embd'] // c['n_head']
        E, Fe = c['n_expert'], c['n_ff_exp']
        self.c, self.hd = c, hd
        p = lambda *s: nn.Parameter(torch.empty(*s))
        self.attn_norm = nn.Parameter(torch.ones(D))
        self.wq, self.wk, self.wv = p(c['n_head'] * hd, D), p(c['n_head_kv'] * hd, D), p(c['n_head_kv'] * hd, D)
        self.wo = p(D, c['n_head'] * hd)
        if c['qkv_bias']:
            self.bq, self.bk, self.bv = (nn.Parameter(torch.zeros(n)) for n in
                                         (c['n_head'] * hd, c['n_head_kv'] * hd, c['n_head_kv'] * hd))
        self.ffn_norm = nn.Parameter(torch.ones(D))
        self.router = p(E, D)
        self.gate_exps, self.up_exps, self.down_exps = p(E, Fe, D), p(E, Fe, D), p(E, D, Fe)
        if c['n_ff_shexp']:
            S = c['n_ff_shexp']
            self.gate_shexp, self.up_shexp, self.down_shexp = p(S, D), p(S, D), p(D, S)
            self.gate_inp_shexp = nn.Parameter(torch.zeros(D))

    def attention(self, x, cos, sin):
        c, hd = self.c, self.hd
        B, T, _ = x.shape
        q, k, v = F.linear(x, self.wq), F.linear(x, self.wk), F.linear(x, self.wv)
        if c['qkv_bias']:
            q, k, v = q + self.bq, k + self.bk, v + self.bv
        q = q.view(B, T, c['n_head'], hd).transpose(1, 2)
        k = k.view(B, T, c['n_head_kv'], hd).transpose(1, 2)
        v = v.view(B, T, c['n_head_kv'], hd).transpose(1, 2)
        q, k = apply_rope(q, cos[:T], sin[:T], c['rope']), apply_rope(k, cos[:T], sin[:T], c['rope'])
        g = c['n_head'] // c['n_head_kv']
        if g > 1:  # GQA: query head h reads kv head h // g, as ggml's broadcast does
            k, v = k.repeat_interleave(g, dim=1), v.repeat_interleave(g, dim=1)
        s = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(hd))
        mask = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1)
        s = s.masked_fill(mask, float('-inf'))
        o = torch.softmax(s, dim=-1) @ v
        return F.linear(o.transpose(1, 2).reshape(B, T, -1), self.wo)

    def moe(self, x, stats):
        """Router: softmax over all experts, top-k; Mixtral renormalizes the k weights,
        qwen2moe keeps the raw probabilities. Expert: down(silu(gate x) * up x)."""
        c = self.c
        shape = x.shape
        x = x.reshape(-1, shape[-1])
        logits = F.linear(x, self.router)
        probs = torch.softmax(logits, dim=-1)
        w, idx = probs.topk(c['n_expert_used'], dim=-1)
        if c['renorm_topk']:
            w = w / w.sum(-1, keepdim=True)
        out = self.experts(x, idx, w)
        if c['n_ff_shexp']:
            sh = F.linear(F.silu(F.linear(x, self.gate_shexp)) * F.linear(x, self.up_shexp), self.down_shexp)
            out = out + torch.sigmoid(x @ self.gate_inp_shexp).unsqueeze(1) * sh
        if stats is not None:
            stats.append((probs, idx, logits))
        return out.reshape(shape)

    def experts(self, x, idx, w):
        """Sum over the k chosen experts of w * down(silu(gate x) * up x).
        Assignments are sorted by expert and packed into an [n_expert, capacity, n_embd]
        buffer so that three batched matmuls serve all experts: with 32 tiny experts a
        per-expert loop spends most of its time in per-call overhead."""
        E, k = self.c['n_expert'], self.c['n_expert_used']
        flat = idx.reshape(-1)
        order = torch.argsort(flat, stable=True)
        tok = order // k                         # token of each sorted assignment
        se = flat[order]                         # its expert
        counts = torch.bincount(flat, minlength=E)
        cap = int(counts.max())
        starts = torch.cumsum(counts, 0) - counts
        slot = se * cap + (torch.arange(flat.numel(), device=x.device) - starts[se])
        buf = x.new_zeros(E * cap, x.shape[1]).index_copy(0, slot, x.index_select(0, tok)).view(E, cap, -1)
        h = F.silu(torch.bmm(buf, self.gate_exps.transpose(1, 2))) * torch.bmm(buf, self.up_exps.transpose(1, 2))
        y = torch.bmm(h, self.down_exps.transpose(1, 2)).reshape(E * cap, -1).index_select(0, slot)
        y = y * w.reshape(-1)[order].unsqueeze(1)
        return torch.zeros_like(x).index_add_(0, tok, y)

    def forward(self, x, cos, sin, stats=None):
        h = x + self.attention(rms_norm(x, self.attn_norm, self.c['rms_eps']), cos, sin)
        return h + self.moe(rms_norm(h, self.ffn_norm, self.c['rms_eps']), stats)


class MoELM(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.tok_embd = nn.Parameter(torch.empty(c['n_vocab'], c['n_embd']))
        self.blocks = nn.ModuleList(Block(c) for _ in range(c['n_layer']))
        self.output_norm = nn.Parameter(torch.ones(c['n_embd']))
        self.output = nn.Parameter(torch.empty(c['n_vocab'], c['n_embd']))
        cos, sin = rope_tables(c['ctx'], c['n_embd'] // c['n_head'], c['rope_base'])
        self.register_buffer('cos', cos, persistent=False)
        self.register_buffer('sin', sin, persistent=False)

    def init_weights(self, seed):
        """GPT-2 style: N(0, 0.02); projections that write into the residual stream scaled by
        1/sqrt(2 n_layer) so the stream does not grow with depth."""
        g = torch.Generator().manual_seed(seed)
        resid = 0.02 / math.sqrt(2 * self.c['n_layer'])
        for name, p in self.named_parameters():
            if p.dim() == 1:
                continue  # norms are ones, biases and the shared-expert gate zeros
            std = resid if name.endswith(('wo', 'down_exps', 'down_shexp')) else 0.02
            if name == 'tok_embd':
                std = self.c.get('embd_std', 0.02)
            with torch.no_grad():
                p.copy_(torch.randn(p.shape, generator=g) * std)

    def forward(self, ids, stats=None):
        x = F.embedding(ids, self.tok_embd)
        for b in self.blocks:
            x = b(x, self.cos, self.sin, stats)
        return F.linear(rms_norm(x, self.output_norm, self.c['rms_eps']), self.output)


def param_counts(model):
    """(total, in experts incl. shared, active per token)."""
    c = model.c
    total = sum(p.numel() for p in model.parameters())
    routed = sum(b.gate_exps.numel() + b.up_exps.numel() + b.down_exps.numel() for b in model.blocks)
    shared = sum(b.gate_shexp.numel() + b.up_shexp.numel() + b.down_shexp.numel() + b.gate_inp_shexp.numel()
                 for b in model.blocks) if c['n_ff_shexp'] else 0
    active = total - routed * (1 - c['n_expert_used'] / c['n_expert'])
    return total, routed, shared, int(active)
