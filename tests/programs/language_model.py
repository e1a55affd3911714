"""A word-level language model trained the way PyTorch's examples train one (an embedding, a
recurrent stack with dropout, a decoder; truncated BPTT over a long token stream with the hidden
state carried and detached; clipping; manual SGD; the best model saved whole, loaded back with
torch.load and flatten_parameters()). Written for bptt's tests: with --convert, the one added line
is ``bptt.convert(model)``; nothing else changes.

    python language_model.py --cell LSTM --steps 12 --save model.pt [--convert]

Prints one JSON object: the training losses and the final test loss.
"""

import argparse
import json
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

parser = argparse.ArgumentParser()
parser.add_argument("--cell", default="LSTM", choices=["RNN_TANH", "RNN_RELU", "LSTM", "GRU"])
parser.add_argument("--steps", type=int, default=12)
parser.add_argument("--save", default="model.pt")
parser.add_argument("--convert", action="store_true")
args = parser.parse_args()

torch.manual_seed(1111)
torch.set_default_dtype(torch.float64)
VOCAB, EMSIZE, NHID, NLAYERS, DROPOUT, BPTT, BATCH, LR, CLIP = 50, 16, 24, 2, 0.2, 8, 6, 5.0, 0.25


class RNNModel(nn.Module):
    def __init__(self, rnn_type, ntoken, ninp, nhid, nlayers, dropout):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(ntoken, ninp)
        if rnn_type in ("LSTM", "GRU"):
            self.rnn = getattr(nn, rnn_type)(ninp, nhid, nlayers, dropout=dropout)
        else:
            self.rnn = nn.RNN(ninp, nhid, nlayers, nonlinearity=rnn_type[4:].lower(), dropout=dropout)
        self.decoder = nn.Linear(nhid, ntoken)
        self.rnn_type, self.nhid, self.nlayers = rnn_type, nhid, nlayers

    def forward(self, input, hidden):
        emb = self.drop(self.encoder(input))
        output, hidden = self.rnn(emb, hidden)
        decoded = self.decoder(self.drop(output)).view(-1, self.decoder.out_features)
        return F.log_softmax(decoded, dim=1), hidden

    def init_hidden(self, bsz):
        weight = next(self.parameters())
        if self.rnn_type == "LSTM":
            return weight.new_zeros(self.nlayers, bsz, self.nhid), weight.new_zeros(self.nlayers, bsz, self.nhid)
        return weight.new_zeros(self.nlayers, bsz, self.nhid)


def batchify(data, bsz):
    nbatch = data.size(0) // bsz
    return data.narrow(0, 0, nbatch * bsz).view(bsz, -1).t().contiguous()


def repackage_hidden(h):
    return h.detach() if isinstance(h, torch.Tensor) else tuple(repackage_hidden(v) for v in h)


def get_batch(source, i):
    seq_len = min(BPTT, len(source) - 1 - i)
    return source[i : i + seq_len], source[i + 1 : i + 1 + seq_len].reshape(-1)


stream = torch.randint(0, VOCAB, (BATCH * (BPTT * args.steps + 1),), generator=torch.Generator().manual_seed(0))
train_data, test_data = batchify(stream, BATCH), batchify(stream[: BATCH * (BPTT * 3 + 1)], BATCH)
model = RNNModel(args.cell, VOCAB, EMSIZE, NHID, NLAYERS, DROPOUT)
if args.convert:
    import bptt

    bptt.convert(model)
criterion = nn.NLLLoss()


def evaluate(source):
    model.eval()
    total, hidden = 0.0, model.init_hidden(BATCH)
    with torch.no_grad():
        for i in range(0, source.size(0) - 1, BPTT):
            data, targets = get_batch(source, i)
            output, hidden = model(data, hidden)
            hidden = repackage_hidden(hidden)
            total += len(data) * criterion(output, targets).item()
    return total / (len(source) - 1)


losses = []
model.train()
hidden = model.init_hidden(BATCH)
for _batch, i in enumerate(range(0, train_data.size(0) - 1, BPTT)):
    data, targets = get_batch(train_data, i)
    model.zero_grad()
    hidden = repackage_hidden(hidden)
    output, hidden = model(data, hidden)
    loss = criterion(output, targets)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
    for p in model.parameters():
        p.data.add_(p.grad, alpha=-LR)
    losses.append(loss.item())

with open(args.save, "wb") as f:
    torch.save(model, f)
with open(args.save, "rb") as f:
    safe = [RNNModel, nn.Dropout, nn.Linear, nn.GRU, nn.LSTM, nn.RNN, nn.Embedding]
    with torch.serialization.safe_globals(safe):
        model = torch.load(f)
    model.rnn.flatten_parameters()
print(
    json.dumps(
        {
            "losses": losses,
            "test_loss": evaluate(test_data),
            "ppl": math.exp(losses[-1]),
            "rnn": type(model.rnn).__module__ + "." + type(model.rnn).__name__,
        }
    )
)
