"""The seed study's recipe in PyTorch, for the parity bench (bench/parity/run.ts runs it; a dev tool only).

Reads the pipeline's own files: embeddings.npy (float32 N x D), ids.csv (row,id,label) and a split folder
({train,val,test}.txt, one id per line). Trains an MLP of hidden blocks Linear -> BatchNorm1d ->
activation -> Dropout, then Linear to the classes; cross-entropy; torch.optim.AdamW; early stopping on
validation loss with patience, best weights restored. Prints one JSON line with the results.

Timing: one thread (torch.set_num_threads(1); run it with OMP_WAIT_POLICY=PASSIVE) so that it compares
with tfjs-wasm, which is single-threaded under Node. "train samples/s" counts training batches only
(forward, backward, optimizer step), as stages/train/fit.ts does.
"""

import argparse
import copy
import csv
import json
import math
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ACTIVATIONS = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "selu": nn.SELU,
    "celu": nn.CELU,
    "gelu": nn.GELU,
    "gelu_tanh": lambda: nn.GELU(approximate="tanh"),
    "silu": nn.SiLU,
    "swish": nn.SiLU,
    "mish": nn.Mish,
    "softplus": nn.Softplus,
    "softsign": nn.Softsign,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "hard_sigmoid": nn.Hardsigmoid,
    "hard_swish": nn.Hardswish,
    "relu6": nn.ReLU6,
    "prelu": nn.PReLU,
    "linear": nn.Identity,
    "glu": lambda: nn.GLU(dim=-1),
}


def build(input_dim, classes, hidden, activation, batchnorm, dropout):
    layers, width = [], input_dim
    for h in hidden:
        units = 2 * h if activation == "glu" else h
        layers.append(nn.Linear(width, units))
        if batchnorm:
            layers.append(nn.BatchNorm1d(units))
        layers.append(ACTIVATIONS[activation]())
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = h
    layers.append(nn.Linear(width, classes))
    return nn.Sequential(*layers)


def load(args):
    x = np.load(args.embeddings).astype(np.float32)
    with open(args.ids, newline="") as f:
        rows = list(csv.DictReader(f))
    row_of = {r["id"]: int(r.get("row", i)) for i, r in enumerate(rows)}
    label_of_row = {int(r.get("row", i)): r["label"] for i, r in enumerate(rows)}
    classes = sorted(set(label_of_row.values()))
    index = {c: i for i, c in enumerate(classes)}
    parts = {}
    for name in ("train", "val", "test"):
        with open(os.path.join(args.split, f"{name}.txt")) as f:
            ids = [line.strip() for line in f if line.strip()]
        rr = [row_of[i] for i in ids]
        parts[name] = (
            torch.from_numpy(x[rr]),
            torch.tensor([index[label_of_row[r]] for r in rr], dtype=torch.long),
        )
    return parts, classes


def evaluate(model, x, y):
    model.eval()
    with torch.no_grad():
        logits = model(x)
        return F.cross_entropy(logits, y).item(), (logits.argmax(1) == y).float().mean().item()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--embeddings", required=True)
    p.add_argument("--ids", required=True)
    p.add_argument("--split", required=True)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--hidden", default="384,256,128,64,32")
    p.add_argument("--activation", default="relu")
    p.add_argument("--no-batchnorm", action="store_true")
    p.add_argument("--dropout", type=float, default=0.15)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=1e-3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--max-epochs", type=int, default=100)
    p.add_argument("--patience", type=int, default=10)
    args = p.parse_args()

    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    parts, classes = load(args)
    xtr, ytr = parts["train"]
    hidden = [int(h) for h in args.hidden.split(",") if h]
    model = build(xtr.shape[1], len(classes), hidden, args.activation, not args.no_batchnorm, args.dropout)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    gen = torch.Generator().manual_seed(args.seed)

    best = (math.inf, 0, copy.deepcopy(model.state_dict()))
    wait, epochs, train_s, seen = 0, 0, 0.0, 0
    cpu0 = time.process_time()
    for epoch in range(1, args.max_epochs + 1):
        model.train()
        perm = torch.randperm(len(ytr), generator=gen)
        t0 = time.perf_counter()
        for start in range(0, len(ytr), args.batch_size):
            idx = perm[start : start + args.batch_size]
            if len(idx) == 1 and not args.no_batchnorm:
                break  # BatchNorm1d cannot train on one row (fit.ts skips it too)
            opt.zero_grad()
            loss = F.cross_entropy(model(xtr[idx]), ytr[idx])
            loss.backward()
            opt.step()
            seen += len(idx)
        train_s += time.perf_counter() - t0
        epochs = epoch
        val_loss, _ = evaluate(model, *parts["val"])
        if val_loss < best[0]:
            best, wait = (val_loss, epoch, copy.deepcopy(model.state_dict())), 0
        else:
            wait += 1
            if args.patience and wait >= args.patience:
                break
    cpu_s = time.process_time() - cpu0
    model.load_state_dict(best[2])
    _, val_acc = evaluate(model, *parts["val"])
    _, test_acc = evaluate(model, *parts["test"])
    print(
        json.dumps(
            {
                "side": "pytorch",
                "seed": args.seed,
                "test_acc": test_acc,
                "val_acc": val_acc,
                "best_epoch": best[1],
                "epochs": epochs,
                "train_samples_per_s": seen / train_s,
                "cpu_samples_per_s": seen / cpu_s,
                "version": f"torch {torch.__version__}, {torch.get_num_threads()} thread",
            }
        )
    )


if __name__ == "__main__":
    main()
