"""Models: a small CNN for the training chapters and the architecture line.

Every builder takes ``num_classes`` and ``in_channels`` and is registered by
name: :func:`list_models` lists them, :func:`create_model` builds one. The
ImageNet builders (``alexnet``, ``vgg16``, ``googlenet``, ``resnet50``, ...)
match torchvision's parameter for parameter; the compact ones (``lenet5``,
``alexnet_small``, ``vgg_small``, ``googlenet_small``, ``resnet20``,
``plain20``, ``se_resnet20``, ...) are sized for 28 x 28 Fashion-MNIST on a CPU.
The segmenters ``fcn`` and ``unet`` map 64 x 64 canvases of Fashion-MNIST
items to 11 class scores per pixel (``num_classes=11``: background and ten);
the detector ``centernet`` finds the items on them (``num_classes=10``).
"""

from .alexnet import AlexNet, alexnet, alexnet_small
from .centernet import CenterNet, CenterNetLoss, UNetFeatures, centernet
from .fcn import FCN, bilinear_kernel, fcn
from .googlenet import (
    BasicConv2d,
    GoogLeNet,
    GoogLeNetOutputs,
    Inception,
    InceptionAux,
    SmallGoogLeNet,
    googlenet,
    googlenet_small,
)
from .lenet import LeNet5, lenet5
from .registry import create_model, list_models, register_model
from .resnet import (
    BasicBlock,
    Bottleneck,
    CifarResNet,
    ResNet,
    ZeroPadShortcut,
    plain20,
    plain32,
    plain44,
    plain56,
    resnet18,
    resnet20,
    resnet32,
    resnet34,
    resnet44,
    resnet50,
    resnet56,
    resnet101,
    resnet110,
    resnet152,
)
from .senet import (
    SqueezeExcitation,
    se_resnet18,
    se_resnet20,
    se_resnet34,
    se_resnet50,
    se_resnet101,
    se_resnet152,
    squeeze_excitation,
)
from .simple import Standardize, simple_cnn
from .unet import DoubleConv, Down, Up, UNet, unet
from .vgg import VGG, make_layers, vgg11, vgg13, vgg16, vgg19, vgg_small

__all__ = [
    "AlexNet",
    "BasicBlock",
    "BasicConv2d",
    "Bottleneck",
    "CenterNet",
    "CenterNetLoss",
    "CifarResNet",
    "DoubleConv",
    "Down",
    "FCN",
    "GoogLeNet",
    "GoogLeNetOutputs",
    "Inception",
    "InceptionAux",
    "LeNet5",
    "ResNet",
    "SmallGoogLeNet",
    "SqueezeExcitation",
    "Standardize",
    "UNet",
    "UNetFeatures",
    "Up",
    "VGG",
    "ZeroPadShortcut",
    "alexnet",
    "alexnet_small",
    "bilinear_kernel",
    "centernet",
    "create_model",
    "fcn",
    "googlenet",
    "googlenet_small",
    "lenet5",
    "list_models",
    "make_layers",
    "plain20",
    "plain32",
    "plain44",
    "plain56",
    "register_model",
    "resnet18",
    "resnet20",
    "resnet32",
    "resnet34",
    "resnet44",
    "resnet50",
    "resnet56",
    "resnet101",
    "resnet110",
    "resnet152",
    "se_resnet18",
    "se_resnet20",
    "se_resnet34",
    "se_resnet50",
    "se_resnet101",
    "se_resnet152",
    "simple_cnn",
    "squeeze_excitation",
    "unet",
    "vgg11",
    "vgg13",
    "vgg16",
    "vgg19",
    "vgg_small",
]
