"""A plain PyTorch training loop over the same network as `neuroevo train --arch S128-64`
(conv3x3-BN-ReLU-conv3x3-BN + 1x1 shortcut, ReLU, flatten, linear), Adam 1e-3, batch 64,
one epoch on the bundled mnist-10k (90% train split), for comparison with scripts/bench-train.sh.
Usage: python scripts/bench_train_torch.py [cpu|cuda] [epochs] [subset: first N images]"""
import gzip, sys, time
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

dev = sys.argv[1] if len(sys.argv) > 1 else "cpu"
epochs = int(sys.argv[2]) if len(sys.argv) > 2 else 1
torch.manual_seed(0)

def idx(path):
    raw = gzip.open(path).read()
    nd = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(nd)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * nd).reshape(dims)

x = torch.tensor(idx("data/mnist-10k/train-images-idx3-ubyte.gz"), dtype=torch.float32).unsqueeze(1) / 255
y = torch.tensor(idx("data/mnist-10k/train-labels-idx1-ubyte.gz"), dtype=torch.int64)
if len(sys.argv) > 3:
    x, y = x[:int(sys.argv[3])], y[:int(sys.argv[3])]
n = int(len(y) * 0.9)
x, y = x[:n].to(dev), y[:n].to(dev)

class Skip(nn.Module):
    def __init__(s, c, f1, f2):
        super().__init__()
        s.c1, s.b1 = nn.Conv2d(c, f1, 3, padding=1), nn.BatchNorm2d(f1)
        s.c2, s.b2 = nn.Conv2d(f1, f2, 3, padding=1), nn.BatchNorm2d(f2)
        s.sc = nn.Conv2d(c, f2, 1)
    def forward(s, x):
        return F.relu(s.b2(s.c2(F.relu(s.b1(s.c1(x))))) + s.sc(x))

net = nn.Sequential(Skip(1, 128, 64), nn.Flatten(), nn.Linear(64 * 28 * 28, 10)).to(dev)
opt = torch.optim.Adam(net.parameters(), 1e-3)
for epoch in range(epochs):
    if dev.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.time()
    perm = torch.randperm(n, device=dev)
    for i in range(0, n, 64):
        idx_ = perm[i:i + 64]
        loss = F.cross_entropy(net(x[idx_]), y[idx_])
        opt.zero_grad()
        loss.backward()
        opt.step()
    if dev.startswith("cuda"):
        torch.cuda.synchronize()
    dt = time.time() - t0
    print(f"pytorch epoch {epoch + 1}: {dt:.2f} s, {n / dt:.0f} samples/s, last loss {loss.item():.4f}")
