"""Exports a trained checkpoint to GGUF (F16 and Q8_0) with the tensor names and metadata
keys llama.cpp's converters write for `qwen2moe` and `llama` (Mixtral) checkpoints.

Weights are written as trained: no q/k permutation, because the llama model was trained
with llama.cpp's own adjacent-pair RoPE (and qwen2moe with its NEOX half rotation).
F32 are kept for what llama.cpp keeps in F32: 1-D tensors (norms, biases, the shared-expert
gate vector) and the router `ffn_gate_inp`; every other matrix is F16 or Q8_0.
"""
import argparse, os, sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bpe
import gguf

CHATML = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
          "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")


def tensor_names(c):
    """(GGUF name, model parameter key, is_matrix) in llama.cpp's order."""
    out = [('token_embd.weight', 'tok_embd', True)]
    for i in range(c['n_layer']):
        p, b = 'blk.%d.' % i, 'blocks.%d.' % i
        out += [(p + 'attn_norm.weight', b + 'attn_norm', False),
                (p + 'attn_q.weight', b + 'wq', True),
                (p + 'attn_k.weight', b + 'wk', True),
                (p + 'attn_v.weight', b + 'wv', True)]
        if c['qkv_bias']:
            out += [(p + 'attn_q.bias', b + 'bq', False),
                    (p + 'attn_k.bias', b + 'bk', False),
                    (p + 'attn_v.bias', b + 'bv', False)]
        out += [(p + 'attn_output.weight', b + 'wo', True),
                (p + 'ffn_norm.weight', b + 'ffn_norm', False),
                (p + 'ffn_gate_inp.weight', b + 'router', False),   # router stays F32
                (p + 'ffn_gate_exps.weight', b + 'gate_exps', True),
                (p + 'ffn_up_exps.weight', b + 'up_exps', True),
                (p + 'ffn_down_exps.weight', b + 'down_exps', True)]
        if c['n_ff_shexp']:
            out += [(p + 'ffn_gate_inp_shexp.weight', b + 'gate_inp_shexp', False),
                    (p + 'ffn_gate_shexp.weight', b + 'gate_shexp', True),
                    (p + 'ffn_up_shexp.weight', b + 'up_shexp', True),
                    (p + 'ffn_down_shexp.weight', b + 'down_shexp', True)]
    out += [('output_norm.weight', 'output_norm', False), ('output.weight', 'output', True)]
    return out


def write(ckpt, name, tok, ftype, path):
    c, sd = ckpt['config'], ckpt['state']
    arch = c['arch']
    w = gguf.GGUFWriter()
    w.add_str('general.architecture', arch)
    w.add_str('general.type', 'model')
    w.add_str('general.name', name)
    w.add_u32('general.alignment', 32)
    w.add_u32('general.file_type', gguf.FILE_TYPE[ftype])
    w.add_u32('general.quantization_version', 2)
    hd = c['n_embd'] // c['n_head']
    w.add_u32(arch + '.context_length', c['ctx'])
    w.add_u32(arch + '.embedding_length', c['n_embd'])
    w.add_u32(arch + '.block_count', c['n_layer'])
    # llama (Mixtral) files give the expert width here; qwen2moe converters write the
    # HF intermediate_size, which for Qwen MoE checkpoints equals the shared expert's width.
    w.add_u32(arch + '.feed_forward_length', c['n_ff_shexp'] if arch == 'qwen2moe' else c['n_ff_exp'])
    w.add_u32(arch + '.attention.head_count', c['n_head'])
    w.add_u32(arch + '.attention.head_count_kv', c['n_head_kv'])
    w.add_f32(arch + '.rope.freq_base', c['rope_base'])
    w.add_f32(arch + '.attention.layer_norm_rms_epsilon', c['rms_eps'])
    w.add_u32(arch + '.expert_count', c['n_expert'])
    w.add_u32(arch + '.expert_used_count', c['n_expert_used'])
    if arch == 'qwen2moe':
        w.add_u32(arch + '.expert_feed_forward_length', c['n_ff_exp'])
        w.add_u32(arch + '.expert_shared_feed_forward_length', c['n_ff_shexp'])
    else:
        w.add_u32(arch + '.vocab_size', c['n_vocab'])
    w.add_u32(arch + '.rope.dimension_count', hd)
    w.add_str('tokenizer.ggml.model', 'gpt2')
    w.add_str('tokenizer.ggml.pre', tok.pre)
    w.add_arr('tokenizer.ggml.tokens', gguf.T_STR, tok.tokens)
    w.add_arr('tokenizer.ggml.token_type', gguf.T_I32, tok.token_types())
    w.add_arr('tokenizer.ggml.merges', gguf.T_STR, tok.merges())
    w.add_u32('tokenizer.ggml.bos_token_id', tok.bos)
    w.add_u32('tokenizer.ggml.eos_token_id', tok.eos)
    w.add_bool('tokenizer.ggml.add_bos_token', c['add_bos'])
    w.add_bool('tokenizer.ggml.add_eos_token', False)
    if arch == 'qwen2moe':
        w.add_str('tokenizer.chat_template', CHATML)
    mtype = gguf.GGML_F16 if ftype == 'f16' else gguf.GGML_Q8_0
    for tname, key, is_matrix in tensor_names(c):
        w.add_tensor(tname, sd[key].detach().float().numpy(), mtype if is_matrix else gguf.GGML_F32)
    w.write(path)
    return os.path.getsize(path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--model', required=True)
    ap.add_argument('--ckpt', default=None)
    ap.add_argument('--out-dir', default='models')
    a = ap.parse_args()
    ckpt = torch.load(a.ckpt or os.path.join('tools/.cache/ckpt', a.model + '.pt'))
    print('exporting %s' % (a.ckpt or a.model))
    tok = bpe.Tokenizer.load(ckpt['tokenizer'])
    for ftype in ('f16', 'q8_0'):
        path = os.path.join(a.out_dir, '%s-%s.gguf' % (a.model, ftype))
        size = write(ckpt, a.model, tok, ftype, path)
        print('wrote %s (%.2f MB)' % (path, size / 1e6))
        assert size <= 25e6, 'shipped files must stay under 25 MB'


if __name__ == '__main__':
    main()
