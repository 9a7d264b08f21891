#!/usr/bin/env python3
"""Trains strata's embedded default model: a small Llama on Tiny Shakespeare, and its draft.

Recipe (run on a machine with a GPU; well under a minute each on one H200):
    python3 models/recipe/train_default.py --data ../shared/data/tinyshakespeare.txt --out OUT_DIR
    strata convert OUT_DIR -o models/shakespeare-q8_0.gguf --type q8_0
    # the draft model for speculative decoding: smaller, same tokenizer
    python3 models/recipe/train_default.py --data ../shared/data/tinyshakespeare.txt --out DRAFT_DIR \
        --tokenizer OUT_DIR/tokenizer.model --dim 64 --layers 2 --heads 2 --kv-heads 1 --ffn 176
    strata convert DRAFT_DIR -o models/shakespeare-draft-q8_0.gguf --type q8_0

Writes a Hugging Face folder (config.json, model.safetensors, tokenizer.model,
tokenizer_config.json) that `strata convert` turns into the GGUF in models/.
Everything is seeded; the tokenizer is trained here too (SentencePiece BPE with byte fallback),
so the model owes nothing but its text to anyone else.
"""
import argparse
import json
import math
import os
import shutil
import time

import sentencepiece as spm
import torch
from transformers import LlamaConfig, LlamaForCausalLM

p = argparse.ArgumentParser()
p.add_argument("--data", required=True)
p.add_argument("--out", required=True)
p.add_argument("--vocab", type=int, default=1024)
p.add_argument("--dim", type=int, default=192)
p.add_argument("--layers", type=int, default=4)
p.add_argument("--heads", type=int, default=6)
p.add_argument("--kv-heads", type=int, default=2)
p.add_argument("--ffn", type=int, default=512)
p.add_argument("--ctx", type=int, default=256)
p.add_argument("--steps", type=int, default=800)
p.add_argument("--batch", type=int, default=64)
p.add_argument("--lr", type=float, default=1e-3)
p.add_argument("--seed", type=int, default=1234)
p.add_argument("--tokenizer", help="reuse this tokenizer.model (a draft must share the target's)")
args = p.parse_args()
os.makedirs(args.out, exist_ok=True)
torch.manual_seed(args.seed)

# 1. Tokenizer: SentencePiece BPE, Llama conventions (BOS=1, EOS=2, UNK=0, byte fallback).
prefix = os.path.join(args.out, "tokenizer")
if args.tokenizer:
    shutil.copy(args.tokenizer, prefix + ".model")
else:
    spm.SentencePieceTrainer.train(
        input=args.data, model_prefix=prefix, vocab_size=args.vocab, model_type="bpe",
        byte_fallback=True, character_coverage=1.0, split_digits=True, unk_id=0, bos_id=1, eos_id=2,
        pad_id=-1, add_dummy_prefix=True, allow_whitespace_only_pieces=True,
        remove_extra_whitespaces=False, normalization_rule_name="identity", seed_sentencepiece_size=100000,
        num_threads=8, minloglevel=2)
sp = spm.SentencePieceProcessor(model_file=prefix + ".model")
text = open(args.data, encoding="utf-8").read()
ids = [sp.bos_id()] + sp.encode(text)
data = torch.tensor(ids, dtype=torch.long)
split = int(0.95 * len(data))
train, val = data[:split], data[split:]
print(f"tokens: {len(ids)} (train {len(train)}, val {len(val)})", flush=True)

# 2. Model.
config = LlamaConfig(
    vocab_size=args.vocab, hidden_size=args.dim, intermediate_size=args.ffn,
    num_hidden_layers=args.layers, num_attention_heads=args.heads,
    num_key_value_heads=args.kv_heads, max_position_embeddings=args.ctx, rms_norm_eps=1e-5,
    rope_theta=10000.0, bos_token_id=1, eos_token_id=2, tie_word_embeddings=False)
model = LlamaForCausalLM(config).cuda()
print(f"parameters: {sum(p.numel() for p in model.parameters())}", flush=True)
opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.1)
gen = torch.Generator().manual_seed(args.seed)


def batch(src):
    starts = torch.randint(0, len(src) - args.ctx - 1, (args.batch,), generator=gen)
    x = torch.stack([src[s:s + args.ctx] for s in starts]).cuda()
    return x


# Tiny Shakespeare is ~0.5M tokens, so a model this size memorizes it within a few hundred
# steps: keep the weights with the best validation loss (early stopping).
best_val, best_state, best_step = float("inf"), None, 0
t0 = time.time()
for step in range(args.steps + 1):
    lr = args.lr * min(1.0, step / 100) * 0.5 * (1 + math.cos(math.pi * step / args.steps))
    for g in opt.param_groups:
        g["lr"] = lr
    x = batch(train)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = model(input_ids=x, labels=x).loss
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    if step % 50 == 0:
        model.eval()
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
            vl = sum(model(input_ids=(v := batch(val)), labels=v).loss.item() for _ in range(16)) / 16
        model.train()
        if vl < best_val:
            best_val, best_step = vl, step
            best_state = {k: t.detach().clone() for k, t in model.state_dict().items()}
        print(f"step {step} loss {loss.item():.3f} val {vl:.3f} ({time.time() - t0:.0f}s)", flush=True)
model.load_state_dict(best_state)
print(f"kept step {best_step}: validation loss {best_val:.3f} (perplexity {math.exp(best_val):.2f})", flush=True)

# 3. Save in float16 (half the bytes of float32; the model is trained under bf16 autocast, so
#    nothing it learned lives below f16 precision) with the tokenizer files `strata convert` reads.
model = model.float().eval()
model.half().save_pretrained(args.out, safe_serialization=True)
model.float()
with open(os.path.join(args.out, "tokenizer_config.json"), "w") as f:
    json.dump({"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "add_bos_token": True,
               "add_eos_token": False, "model_max_length": args.ctx}, f, indent=1)
prompt = torch.tensor([[sp.bos_id()] + sp.encode("ROMEO:")]).cuda()
out = model.generate(prompt, max_new_tokens=48, do_sample=False)
print("greedy sample:", sp.decode(out[0].tolist()), flush=True)
