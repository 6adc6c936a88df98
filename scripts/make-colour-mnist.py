#!/usr/bin/env python3
"""Colour MNIST as a folder of 64x64 RGB PNGs, for the 3-channel thesis setting of
`neuroevo gan --dataset folder:DIR --image-size 64 --channels 3` (no RGB face set is on these
machines). Digits from an IDX file, resized bilinearly, drawn in a random bright colour on a
random dark background (seeded). Needs only torch (the .venv of scripts/setup.sh).

    .venv/bin/python scripts/make-colour-mnist.py data/mnist-10k/train-images-idx3-ubyte.gz .dev/cmnist64 4000
"""
import gzip, struct, zlib, os, sys, torch
src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
raw = gzip.open(src).read()
_, cnt, h, w = struct.unpack('>IIII', raw[:16])
x = torch.frombuffer(bytearray(raw[16:16 + n * h * w]), dtype=torch.uint8).view(n, 1, h, w).float() / 255
x = torch.nn.functional.interpolate(x, size=64, mode='bilinear', align_corners=False).clamp(0, 1)
g = torch.Generator().manual_seed(0)
fg = torch.rand(n, 3, 1, 1, generator=g) * 0.7 + 0.3
bg = torch.rand(n, 3, 1, 1, generator=g) * 0.3
img = (bg * (1 - x) + fg * x).mul(255).round().byte().permute(0, 2, 3, 1).contiguous()
def png(path, a):
    hgt, wid, _ = a.shape
    rows = b''.join(b'\x00' + bytes(a[r].flatten().tolist()) for r in range(hgt))
    def chunk(t, d):
        return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)
    data = b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', wid, hgt, 8, 2, 0, 0, 0)) \
        + chunk(b'IDAT', zlib.compress(rows, 6)) + chunk(b'IEND', b'')
    open(path, 'wb').write(data)
os.makedirs(dst, exist_ok=True)
for i in range(n):
    png(os.path.join(dst, f'{i:05d}.png'), img[i])
print(f'wrote {n} {64}x{64} RGB PNGs to {dst}')
