"""Rebuild a network exported by neuroevo (`neuroevo train`, `auto-cnn`) as a trainable
`torch.nn.Module`: the TorchScript export holds its weights as constants, so to fine-tune,
build the same network from the layer list in its `.json` and load the `.safetensors` beside it.

    import neuroevo_torch
    net = neuroevo_torch.load("runs/cnn/model.json")      # reads model.safetensors beside it
    opt = torch.optim.Adam(net.parameters(), 1e-4)       # and train as usual

Generators of `neuroevo gan` (both modes) likewise: `load_generator("best-generator.json")`.

Needs only `torch` and `safetensors`. The layer list is neuroevo's notation: `S<f1>-<f2>` (a
skip layer: conv3x3(f1)-BN-ReLU-conv3x3(f2)-BN plus a 1x1 shortcut conv, then ReLU), `P:max` /
`P:avg` (2x2 pooling, stride 2), `F<n>` (a dense layer with ReLU), `D<p>` (dropout); then a
linear head to the classes. Parameter names are the ones neuroevo's variable store uses
(`l0.conv1.weight`, `l2.fc.bias`, `head.weight`, ...).
"""
import json
import os

import torch
from torch import nn

__all__ = ["LayerNet", "DcganGenerator", "MlpGenerator", "load", "load_generator"]


class _Skip(nn.Module):
    def __init__(self, c, f1, f2):
        super().__init__()
        self.conv1 = nn.Conv2d(c, f1, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(f1)
        self.conv2 = nn.Conv2d(f1, f2, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(f2)
        self.shortcut = nn.Conv2d(c, f2, 1)

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return torch.relu(y + self.shortcut(x))


class _Fc(nn.Module):
    def __init__(self, inp, units):
        super().__init__()
        self.fc = nn.Linear(inp, units)

    def forward(self, x):
        return torch.relu(self.fc(x.flatten(1)))


class _Pool(nn.Module):
    def __init__(self, kind):
        super().__init__()
        self.kind = kind

    def forward(self, x):
        if self.kind == "max":
            return nn.functional.max_pool2d(x, 2, 2)
        return nn.functional.avg_pool2d(x, 2, 2)


class LayerNet(nn.Module):
    """The network of a layer list for inputs `[N, C, H, W]` of `input_shape` and `classes` logits."""

    def __init__(self, arch, input_shape, classes):
        super().__init__()
        c, h, w = input_shape
        flat = None
        self.names = []
        for i, tok in enumerate(arch.split()):
            if tok.startswith("S"):
                f1, f2 = (int(v) for v in tok[1:].split("-"))
                m, c = _Skip(c, f1, f2), f2
            elif tok.startswith("P:"):
                m = _Pool(tok[2:])
                h, w = h // 2, w // 2
            elif tok.startswith("F"):
                units = int(tok[1:])
                m = _Fc(flat if flat is not None else c * h * w, units)
                flat = units
            elif tok.startswith("D"):
                m = nn.Dropout(float(tok[1:]))
            else:
                raise ValueError(f"unknown layer {tok!r} in {arch!r}")
            setattr(self, f"l{i}", m)
            self.names.append(f"l{i}")
        self.feature_dim = flat if flat is not None else c * h * w
        self.head = nn.Linear(self.feature_dim, classes)

    def features(self, x):
        """The penultimate features `[N, feature_dim]` (what neuroevo's FID uses)."""
        for n in self.names:
            x = getattr(self, n)(x)
        return x.flatten(1)

    def forward(self, x):
        return self.head(self.features(x))


def load(json_path, weights=None):
    """The network described by a neuroevo `.json`, with the weights of the `.safetensors`
    beside it (or `weights`), in eval mode; call `.train()` to fine-tune."""
    from safetensors.torch import load_file

    with open(json_path) as f:
        info = json.load(f)
    net = LayerNet(info["arch"], info["input_shape"], len(info["classes"]))
    if weights is None:
        name = info.get("weights_file") or os.path.splitext(os.path.basename(json_path))[0] + ".safetensors"
        weights = os.path.join(os.path.dirname(json_path), name)
    state = load_file(weights)
    missing, unexpected = net.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise ValueError(f"{weights}: does not fit {info['arch']!r}: missing {missing}, unexpected {unexpected}")
    return net.eval()


class _GenLayer(nn.Module):
    def __init__(self, spec):
        super().__init__()
        self.conv = nn.ConvTranspose2d(spec["cin"], spec["cout"], spec["k"], spec["stride"], spec["pad"], bias=False)
        self.bn = nn.BatchNorm2d(spec["cout"]) if spec["bn"] else None

    def forward(self, x):
        x = self.conv(x)
        return self.bn(x) if self.bn is not None else x


class DcganGenerator(nn.Module):
    """A dcgan generator of `neuroevo gan`: latents `[N, latent]` -> images `[N, C, H, W]` in
    [-1, 1]; transposed convolutions with batch norm and ReLU, tanh at the end."""

    def __init__(self, layers):
        super().__init__()
        self.latent = layers[0]["cin"]
        self.layers = nn.ModuleList(_GenLayer(s) for s in layers)

    def forward(self, z):
        x = z.reshape(-1, self.latent, 1, 1)
        for i, layer in enumerate(self.layers):
            x = layer(x)
            x = torch.tanh(x) if i == len(self.layers) - 1 else torch.relu(x)
        return x


class MlpGenerator(nn.Module):
    """A weights-mode generator of `neuroevo gan`: latents `[N, latent]` -> dense layers with a
    sigmoid (or a softmax over the units, divided by a temperature) -> sigmoid pixels in [0, 1],
    reshaped to `output_shape`."""

    def __init__(self, sizes, output_shape, hidden_activation="sigmoid", temperature=None):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.output_shape = tuple(output_shape)
        self.hidden_activation, self.temperature = hidden_activation, temperature

    def forward(self, z):
        h = z
        for i, layer in enumerate(self.layers):
            a = layer(h)
            if i == len(self.layers) - 1 or self.hidden_activation == "sigmoid":
                h = torch.sigmoid(a)
            else:
                h = torch.softmax(a / self.temperature, dim=-1)
        return h.reshape(-1, *self.output_shape)


def load_generator(json_path, weights=None):
    """The generator of a `best-generator.json` (either mode), with the `.safetensors` beside
    it, in eval mode (dcgan: batch norm with the statistics of the export)."""
    from safetensors.torch import load_file

    with open(json_path) as f:
        info = json.load(f)
    layers = info.get("layers")
    if not layers:
        raise ValueError(f"{json_path}: no layers (exported before generators were rebuildable)")
    if isinstance(layers, dict):
        net = MlpGenerator(layers["mlp"], info["output_shape"], layers["hidden_activation"], layers.get("temperature"))
    else:
        net = DcganGenerator(layers)
    if weights is None:
        weights = os.path.join(os.path.dirname(json_path), info["weights_file"])
    missing, unexpected = net.load_state_dict(load_file(weights), strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise ValueError(f"{weights}: does not fit: missing {missing}, unexpected {unexpected}")
    return net.eval()
