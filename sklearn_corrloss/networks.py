"""Torch modules: MLP head, image backbones split into a frozen trunk and a trainable tail.

Every image network is ``ImageNormalize -> trunk -> tail -> head``:

* ``trunk``: the frozen first part of the backbone (no gradients, always in eval mode,
  so its output for an image never changes during training);
* ``tail``: the trainable rest of the backbone, ending in a flat feature vector;
* ``head``: :class:`MLPHead`, dense ``hidden_units`` + ReLU + dropout + U logits, as in
  the paper.

Keeping the trunk separate lets a frozen-trunk feature cache feed :meth:`BackboneNet.forward_tail`
directly (see :meth:`BackboneNet.forward_trunk`).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Mapping

import torch
import torchvision
from torch import nn

from .images import IMAGENET_MEAN, IMAGENET_STD

__all__ = [
    "BACKBONES",
    "PAPER_FREEZE_POINTS",
    "VGG16_KERAS_NAMES",
    "BackboneNet",
    "ImageNormalize",
    "MLPHead",
    "SmallCNN",
    "backbone_stages",
]

#: Supported backbone names.
BACKBONES = ("vgg16", "resnet18", "resnet50", "mobilenet_v3_small", "efficientnet_b0", "small_cnn")

#: First trainable stage for ``freeze="paper"``: everything before it is frozen.
#: VGG16: ``block5_conv3`` (the paper); the others: the last block of the feature
#: extractor (ResNet: last residual block; MobileNetV3 / EfficientNet: the final 1x1
#: convolution block; small_cnn: its last convolution block).
PAPER_FREEZE_POINTS = {
    "vgg16": "features.28",
    "resnet18": "layer4.1",
    "resnet50": "layer4.2",
    "mobilenet_v3_small": "features.12",
    "efficientnet_b0": "features.8",
    "small_cnn": "block4",
}


def _vgg16_keras_names() -> dict[str, str]:
    """Keras layer names of VGG16 (as in the paper) -> torchvision ``features`` indices."""
    names = {}
    for block, first, n_convs in ((1, 0, 2), (2, 5, 2), (3, 10, 3), (4, 17, 3), (5, 24, 3)):
        for conv in range(n_convs):  # each convolution is followed by a ReLU
            names[f"block{block}_conv{conv + 1}"] = f"features.{first + 2 * conv}"
        names[f"block{block}_pool"] = f"features.{first + 2 * n_convs}"
    return names


#: Keras names of VGG16 layers (``block5_conv3``, ...) -> torchvision stage names.
VGG16_KERAS_NAMES = _vgg16_keras_names()


class MLPHead(nn.Module):
    """Dense ``hidden_units`` + ReLU + dropout + ``n_outputs`` logits.

    Also the whole network of :class:`~sklearn_corrloss.classifier.CorrLossClassifier`
    (feature vectors in, logits out).

    Parameters
    ----------
    in_features : int
    n_outputs : int
        Number of labels U.
    hidden_units : int, default=256
    dropout : float, default=0.5

    Examples
    --------
    >>> head = MLPHead(10, 3, hidden_units=8)
    >>> head(torch.zeros(4, 10)).shape
    torch.Size([4, 3])
    """

    def __init__(
        self, in_features: int, n_outputs: int, *, hidden_units: int = 256, dropout: float = 0.5
    ):
        super().__init__()
        self.hidden = nn.Linear(in_features, hidden_units)
        self.activation = nn.ReLU()
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(hidden_units, n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of a batch of feature vectors.

        Parameters
        ----------
        x : torch.Tensor of shape (N, in_features)
            Feature vectors.

        Returns
        -------
        torch.Tensor of shape (N, n_outputs)
            One logit per label.
        """
        return self.output(self.dropout(self.activation(self.hidden(x))))


class ImageNormalize(nn.Module):
    """``uint8`` (or [0, 1] float) RGB batches -> float, standardised per channel.

    Parameters
    ----------
    mean, std : sequence of 3 floats
        Channel statistics in RGB order; default ImageNet's (torchvision weights).

    Examples
    --------
    >>> norm = ImageNormalize(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    >>> norm(torch.full((1, 3, 2, 2), 255, dtype=torch.uint8)).unique()
    tensor([1.])
    """

    def __init__(self, mean=IMAGENET_MEAN, std=IMAGENET_STD):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scale ``uint8`` input to [0, 1], then standardise each channel.

        Parameters
        ----------
        x : torch.Tensor of shape (N, 3, H, W)
            ``uint8`` or [0, 1] float RGB images.

        Returns
        -------
        torch.Tensor of shape (N, 3, H, W)
            ``(x - mean) / std`` in float32.
        """
        x = x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()
        return (x - self.mean) / self.std


class SmallCNN(nn.Module):
    """A small convolutional feature extractor for CPU work and tests (1,024 features).

    Four blocks ``conv 3x3 -> batch norm -> ReLU -> 2x2 max pooling`` (16, 32, 64, 64
    channels), then adaptive average pooling to a 4x4 grid. The grid keeps *where* a
    feature is: AUs are local (brows, cheeks, mouth corners), and a global average pool
    cannot tell a raised brow from a raised lip corner.

    Examples
    --------
    >>> SmallCNN()(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 1024])
    """

    out_features = 64 * 4 * 4

    def __init__(self):
        super().__init__()

        def block(c_in, c_out):
            return nn.Sequential(
                nn.Conv2d(c_in, c_out, 3, padding=1),
                nn.BatchNorm2d(c_out),
                nn.ReLU(),
                nn.MaxPool2d(2),
            )

        self.block1 = block(3, 16)
        self.block2 = block(16, 32)
        self.block3 = block(32, 64)
        self.block4 = block(64, 64)
        self.avgpool = nn.AdaptiveAvgPool2d(4)
        self.flatten = nn.Flatten()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Feature vectors of a batch of images.

        Parameters
        ----------
        x : torch.Tensor of shape (N, 3, H, W)
            Float RGB images, H and W at least 16.

        Returns
        -------
        torch.Tensor of shape (N, 1024)
            The flattened 64 x 4 x 4 feature grid.
        """
        stages = (self.block1, self.block2, self.block3, self.block4, self.avgpool, self.flatten)
        for stage in stages:
            x = stage(x)
        return x


def _read_state_dict(path) -> Mapping:
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Weights file not found: {path!r}.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # corrupt file, pickled module instead of a state dict, ...
        raise ValueError(f"Cannot load {path!r} as a PyTorch state dict: {error}") from error
    if isinstance(state, Mapping) and isinstance(state.get("state_dict"), Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping):
        raise ValueError(
            f"{path!r} holds a {type(state).__name__}, not a state dict "
            "(save one with torch.save(model.state_dict(), path))."
        )
    return OrderedDict((k.removeprefix("module."), v) for k, v in state.items())


def _imagenet_state_dict(name: str) -> Mapping:
    weights = torchvision.models.get_model_weights(name).DEFAULT
    try:
        return weights.get_state_dict(progress=False, check_hash=True)
    except (OSError, RuntimeError) as error:  # URLError is an OSError
        file_name = weights.url.rsplit("/", 1)[-1]
        raise RuntimeError(
            f"Could not obtain the ImageNet weights of {name} ({weights.url}): {error}. "
            f"Without internet access, download {file_name} on another machine and pass "
            f"its local path instead: weights='/path/to/{file_name}'."
        ) from error


def _random_vgg16() -> nn.Module:
    """VGG16 with only its convolutional part allocated and initialised.

    The classifier (about 120 million parameters, 90 % of the model) is never used here;
    building it on the ``meta`` device saves seconds and half a gigabyte per network. The
    convolutions get torchvision's VGG initialisation (Kaiming normal, fan-out, zero bias).
    """
    with torch.device("meta"):
        model = torchvision.models.get_model("vgg16")
    model.features.to_empty(device="cpu")
    for module in model.features.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(module.bias)
    return model


def _load_backbone(name: str, weights) -> nn.Module:
    if name not in BACKBONES:
        raise ValueError(f"Unknown backbone {name!r}; choose one of {list(BACKBONES)}.")
    if weights is None:
        if name == "vgg16":
            return _random_vgg16()
        return SmallCNN() if name == "small_cnn" else torchvision.models.get_model(name)
    if isinstance(weights, str) and weights == "imagenet":
        if name == "small_cnn":
            raise ValueError(
                "small_cnn has no ImageNet weights; use weights=None or a state-dict path."
            )
        state, source = _imagenet_state_dict(name), "torchvision's ImageNet weights"
    elif isinstance(weights, (str, os.PathLike)):
        state, source = _read_state_dict(weights), repr(os.fspath(weights))
    else:
        raise ValueError(
            f"weights must be None, 'imagenet' or a path to a state-dict file, got {weights!r}."
        )
    # Built on the meta device (no memory, no random initialisation), then the loaded
    # tensors are assigned to it: the weights are never allocated twice.
    with torch.device("meta"):
        model = SmallCNN() if name == "small_cnn" else torchvision.models.get_model(name)
    expected = model.state_dict()  # cast (e.g. a float16 file) as load_state_dict would copy
    state = OrderedDict(
        (k, v.to(expected[k].dtype) if k in expected and v.dtype != expected[k].dtype else v)
        for k, v in state.items()
    )
    try:
        model.load_state_dict(state, assign=True)
    except RuntimeError as error:
        raise ValueError(
            f"The weights in {source} do not fit backbone {name!r}: {error}"
        ) from error
    return model


def backbone_stages(name: str, weights=None) -> tuple[list[tuple[str, nn.Module]], int]:
    """The backbone as an ordered list of named stages, ending in flat features.

    Parameters
    ----------
    name : {"vgg16", "resnet18", "resnet50", "mobilenet_v3_small", "efficientnet_b0", \
"small_cnn"}
    weights : None, "imagenet" or path, default=None
        None: random initialisation; "imagenet": torchvision's ImageNet weights
        (downloaded once into the torch hub cache; offline this raises a RuntimeError
        asking for a local file); a path: a state dict of the torchvision model
        (for example ``vgg16-397923af.pth``) or of :class:`SmallCNN`.

    Returns
    -------
    stages : list of (str, Module)
        Stage names follow the torchvision module names (``features.28``,
        ``layer4.1``, ...), then ``avgpool`` and ``flatten``.
    out_features : int
        Length of the feature vector after the last stage.

    Examples
    --------
    >>> stages, n = backbone_stages("small_cnn")
    >>> [s for s, _ in stages], n
    (['block1', 'block2', 'block3', 'block4', 'avgpool', 'flatten'], 1024)
    """
    model = _load_backbone(name, weights)
    if name == "small_cnn":
        stages = list(model.named_children())
        return stages, SmallCNN.out_features
    if name == "vgg16":
        stages = [(f"features.{i}", m) for i, m in enumerate(model.features)]
        out_features = 512 * 7 * 7  # Keras-style Flatten of the 7x7 map, as in the paper
    elif name.startswith("resnet"):
        stages = [(n, getattr(model, n)) for n in ("conv1", "bn1", "relu", "maxpool")]
        for layer in ("layer1", "layer2", "layer3", "layer4"):
            stages += [(f"{layer}.{i}", m) for i, m in enumerate(getattr(model, layer))]
        out_features = model.fc.in_features
    else:  # mobilenet_v3_small, efficientnet_b0
        stages = [(f"features.{i}", m) for i, m in enumerate(model.features)]
        linear = next(m for m in model.classifier if isinstance(m, nn.Linear))
        out_features = linear.in_features
    stages += [("avgpool", model.avgpool), ("flatten", nn.Flatten())]
    return stages, out_features


def _split_index(name: str, stage_names: list[str], freeze) -> int:
    if not isinstance(freeze, str):
        raise ValueError(f"freeze must be a string, got {freeze!r}.")
    if freeze == "none":
        return 0
    if freeze == "all":
        return len(stage_names)
    layer = PAPER_FREEZE_POINTS[name] if freeze == "paper" else freeze
    if name == "vgg16":
        layer = VGG16_KERAS_NAMES.get(layer, layer)
    if layer not in stage_names:
        extra = " or a Keras name such as 'block5_conv3'" if name == "vgg16" else ""
        raise ValueError(
            f"freeze={freeze!r} is not 'paper', 'none', 'all' or a layer of {name}; "
            f"layer names are {stage_names}{extra}."
        )
    return stage_names.index(layer)


class BackboneNet(nn.Module):
    """Image network of the paper: normalisation, frozen trunk, trainable tail, MLP head.

    Parameters
    ----------
    backbone : str, default="vgg16"
        One of :data:`BACKBONES`.
    n_outputs : int
        Number of labels U.
    weights : None, "imagenet" or path, default=None
        See :func:`backbone_stages`.
    freeze : str, default="paper"
        ``"paper"``: freeze everything before :data:`PAPER_FREEZE_POINTS` (VGG16:
        up to block5_conv3, i.e. ``features[:28]``); ``"none"``: train everything;
        ``"all"``: train only the head; a stage name (``"layer4.0"``, or for VGG16 also
        a Keras name such as ``"block5_conv1"``): freeze everything before that stage.
    hidden_units : int, default=256
    dropout : float, default=0.5
    mean, std : sequence of 3 floats
        Input normalisation (RGB); ImageNet's by default, matching torchvision weights.

    Attributes
    ----------
    normalize : ImageNormalize
    trunk : nn.Sequential
        Frozen stages (may be empty); parameters have ``requires_grad=False`` and the
        trunk stays in eval mode, so batch-norm statistics are not updated.
    tail : nn.Sequential
        Trainable stages (may be empty), ending in a flat feature vector.
    head : MLPHead

    Examples
    --------
    >>> net = BackboneNet(backbone="small_cnn", n_outputs=4, hidden_units=8)
    >>> net(torch.zeros(2, 3, 32, 32, dtype=torch.uint8)).shape
    torch.Size([2, 4])
    >>> [name for name, _ in net.trunk.named_children()]
    ['block1', 'block2', 'block3']
    """

    def __init__(
        self,
        *,
        backbone: str = "vgg16",
        n_outputs: int,
        weights=None,
        freeze: str = "paper",
        hidden_units: int = 256,
        dropout: float = 0.5,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
    ):
        super().__init__()
        stages, out_features = backbone_stages(backbone, weights)
        split = _split_index(backbone, [n for n, _ in stages], freeze)
        # Module names may not contain dots: "features.28" -> "features_28".
        named = [(n.replace(".", "_"), m) for n, m in stages]
        self.normalize = ImageNormalize(mean, std)
        self.trunk = nn.Sequential(OrderedDict(named[:split]))
        self.tail = nn.Sequential(OrderedDict(named[split:]))
        self.head = MLPHead(out_features, n_outputs, hidden_units=hidden_units, dropout=dropout)
        self.trunk.requires_grad_(False)
        self.trunk.eval()

    @property
    def trunk_frozen(self) -> bool:
        """True when the trunk holds at least one stage."""
        return len(self.trunk) > 0

    def train(self, mode: bool = True):
        """Set training mode like :meth:`torch.nn.Module.train`; the trunk stays in eval mode.

        Parameters
        ----------
        mode : bool, default=True
            Training (True) or evaluation (False) mode for the tail and the head.

        Returns
        -------
        BackboneNet
            ``self``.
        """
        super().train(mode)
        self.trunk.eval()  # frozen: batch norm uses fixed statistics, dropout is off
        return self

    def forward_trunk(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised input through the frozen trunk (no gradient).

        Parameters
        ----------
        x : torch.Tensor of shape (N, 3, H, W)
            ``uint8`` (or [0, 1] float) RGB images.

        Returns
        -------
        torch.Tensor
            The trunk's output (the input of the tail).
        """
        with torch.no_grad():
            return self.trunk(self.normalize(x))

    def forward_tail(self, features: torch.Tensor) -> torch.Tensor:
        """Trunk output -> logits through the trainable tail and the head.

        Parameters
        ----------
        features : torch.Tensor
            Output of :meth:`forward_trunk` (or the normalised images when the trunk
            is empty).

        Returns
        -------
        torch.Tensor of shape (N, n_outputs)
            One logit per label.
        """
        return self.head(self.tail(features))

    def forward(self, x: torch.Tensor | None = None, *, features=None) -> torch.Tensor:
        """Logits of images ``x``, or of precomputed trunk output ``features``.

        Parameters
        ----------
        x : tensor of shape (N, 3, H, W), optional
            ``uint8`` (or [0, 1] float) RGB images.
        features : tensor, optional
            Output of :meth:`forward_trunk` (for example from a
            :mod:`~sklearn_corrloss.feature_cache`); given instead of ``x``.

        Returns
        -------
        torch.Tensor of shape (N, n_outputs)
            One logit per label.
        """
        if (x is None) == (features is None):
            raise ValueError("Pass either images x or trunk features, not both or neither.")
        if features is not None:
            return self.forward_tail(features)
        if self.trunk_frozen:
            return self.forward_tail(self.forward_trunk(x))
        return self.forward_tail(self.normalize(x))
