"""Train the bundled ``induction-2l`` model: a 2-layer GPT-2 that copies repeated sequences.

Run from the repository root (CPU, about 8 minutes on 2 threads)::

    python scripts/train_induction.py            # writes src/residual_widgets/data/induction-2l/

The task. Every training row is 64 tokens: an optional ``<bos>``, a random prefix of random
length, a random sequence ``x`` (8-28 tokens), ``x`` again, then random filler. The loss is taken
only where the next token can be copied: inside the second repeat, at the position of ``x[k]``
the model must predict ``x[k+1]``. Nothing else is learnable (all tokens are uniform random),
so the only way to lower the loss is an induction circuit: a previous-token head in layer 0
writes "the token before me was x[k]" into the position of the first ``x[k+1]``, and an
induction head in layer 1 at the second ``x[k]`` attends there and copies ``x[k+1]``.
(A loss on all positions did not learn in 700 steps; see NOTES.md.)

Everything is seeded; the hyperparameters are in ``HP`` below. The script prints the copy
accuracy (argmax == correct copy, over the copyable positions of 1,024 fresh held-out rows).

Recorded run (2 threads, torch 2.13 CPU): see RESULT at the bottom of this docstring.

RESULT: (filled in after the run)
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import torch

HP = dict(
    seed=0,
    n_layer=2, n_embd=128, n_head=4, vocab=512, n_ctx=64,
    n_special=4,               # <unk> <bos> <eos> <pad>; content tokens are ids 4..511
    min_len=8, max_len=28,     # length of the repeated sequence x
    p_bos=0.5,                 # half the rows start with <bos>, so either convention works
    batch=64, steps=4000, lr=1e-3, warmup=100, weight_decay=0.01, grad_clip=1.0,
    eval_rows=1024, threads=2,
    sinusoidal_wpe=True, wpe_scale=0.03,
)
OUT = Path(__file__).resolve().parents[1] / "src" / "residual_widgets" / "data" / "induction-2l"
SPECIALS = ["<unk>", "<bos>", "<eos>", "<pad>"]


def build_tokenizer():
    """Word-level tokenizer: specials, then ``" t0" .. " t507"`` (ids 4..511).

    ``" t5 t17 t3"`` (or ``"t5 t17 t3"``) encodes to the ids of those three tokens; decoding
    gives back ``" t5 t17 t3"``. No special token is added automatically.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    n_content = HP["vocab"] - HP["n_special"]
    vocab = {t: i for i, t in enumerate(SPECIALS)}
    vocab.update({f" t{i}": HP["n_special"] + i for i in range(n_content)})
    tk = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    # Collapse whitespace to one space and make sure the text starts with one, then split
    # into " word" pieces: "t5  t17" -> " t5", " t17".
    tk.normalizer = normalizers.Sequence(
        [normalizers.Prepend(" "), normalizers.Replace(Regex(r"\s+"), " ")])
    tk.pre_tokenizer = pre_tokenizers.Split(Regex(r" [^ ]+"), behavior="isolated")
    tk.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="<unk>", bos_token="<bos>",
                                   eos_token="<eos>", pad_token="<pad>",
                                   model_max_length=HP["n_ctx"])


def make_batch(n: int, g: torch.Generator):
    """``n`` rows of [<bos>?, prefix, x, x, filler]; returns ids and the loss mask.

    ``mask[b, t]`` is True where the target ``ids[b, t+1]`` is a copyable ``x[k+1]``.
    """
    T, lo, hi = HP["n_ctx"], HP["n_special"], HP["vocab"]
    ids = torch.randint(lo, hi, (n, T), generator=g)
    mask = torch.zeros(n, T, dtype=torch.bool)
    for b in range(n):
        start = 0
        if torch.rand((), generator=g) < HP["p_bos"]:
            ids[b, 0] = 1
            start = 1
        L = int(torch.randint(HP["min_len"], HP["max_len"] + 1, (), generator=g))
        p = start + int(torch.randint(0, T - start - 2 * L + 1, (), generator=g))
        ids[b, p + L:p + 2 * L] = ids[b, p:p + L]
        mask[b, p + L:p + 2 * L - 1] = True     # at second x[k], predict x[k+1]
    return ids, mask


@torch.no_grad()
def copy_accuracy(model, ids, mask) -> float:
    logits = model(ids).logits[:, :-1]
    hit = logits.argmax(-1) == ids[:, 1:]
    return hit[mask[:, :-1]].float().mean().item()


def main() -> None:
    from safetensors.torch import save_file
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.set_num_threads(HP["threads"])
    torch.manual_seed(HP["seed"])
    g = torch.Generator().manual_seed(HP["seed"])
    cfg = GPT2Config(vocab_size=HP["vocab"], n_positions=HP["n_ctx"], n_embd=HP["n_embd"],
                     n_layer=HP["n_layer"], n_head=HP["n_head"], resid_pdrop=0.0,
                     embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=1, eos_token_id=2,
                     pad_token_id=3, tie_word_embeddings=True)
    model = GPT2LMHeadModel(cfg)
    if HP["sinusoidal_wpe"]:
        # Start the (still learned) position embedding from sinusoids: a fixed offset such as
        # "the previous position" is then a linear map away, and the previous-token head that
        # induction needs forms much sooner than from random positions.
        with torch.no_grad():
            pos = torch.arange(HP["n_ctx"])[:, None].float()
            freq = torch.exp(-math.log(HP["n_ctx"]) * torch.arange(0, HP["n_embd"], 2) / HP["n_embd"])
            wpe = torch.zeros(HP["n_ctx"], HP["n_embd"])
            wpe[:, 0::2], wpe[:, 1::2] = torch.sin(pos * freq), torch.cos(pos * freq)
            model.transformer.wpe.weight.copy_(wpe * HP["wpe_scale"])
    opt = torch.optim.AdamW(model.parameters(), lr=HP["lr"], betas=(0.9, 0.98),
                            weight_decay=HP["weight_decay"])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / HP["warmup"])
                                              * 0.5 * (1 + math.cos(math.pi * s / HP["steps"])))
    eval_ids, eval_mask = make_batch(HP["eval_rows"], torch.Generator().manual_seed(12345))
    t0 = time.time()
    for step in range(HP["steps"]):
        model.train()
        ids, mask = make_batch(HP["batch"], g)
        logits = model(ids).logits[:, :-1]
        m = mask[:, :-1]
        loss = torch.nn.functional.cross_entropy(logits[m], ids[:, 1:][m])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), HP["grad_clip"])
        opt.step()
        sched.step()
        if step % 250 == 0 or step == HP["steps"] - 1:
            model.eval()
            acc = copy_accuracy(model, eval_ids[:256], eval_mask[:256])
            print(f"step {step:5d}  loss {loss.item():.3f}  copy acc {acc:.3f}  "
                  f"{time.time() - t0:6.1f} s", flush=True)
    wall = time.time() - t0
    model.eval()
    acc = copy_accuracy(model, eval_ids, eval_mask)

    OUT.mkdir(parents=True, exist_ok=True)
    model.config.save_pretrained(OUT)
    # Tied lm_head: store the embedding once; from_pretrained re-ties it.
    state = {k: v.contiguous() for k, v in model.state_dict().items() if k != "lm_head.weight"}
    save_file(state, OUT / "model.safetensors", metadata={"format": "pt"})
    build_tokenizer().save_pretrained(OUT)
    (OUT / "training.json").write_text(json.dumps(
        dict(hyperparameters=HP, copy_accuracy=round(acc, 4), train_seconds=round(wall, 1),
             torch=torch.__version__), indent=1) + "\n")
    print(f"final copy accuracy {acc:.4f} on {HP['eval_rows']} held-out rows; "
          f"{HP['steps']} steps in {wall:.0f} s; wrote {OUT}")
    if acc < 0.95:
        sys.exit("copy accuracy below 0.95")


if __name__ == "__main__":
    main()
