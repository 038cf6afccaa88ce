"""What a CNN sees: feature maps, attribution maps, feature visualization and fooling images.

One module per question: :mod:`~cnncourse.interpret.hooks` (what does a layer
output, and its gradient?), :mod:`~cnncourse.interpret.attribution` (which pixels
mattered?), :mod:`~cnncourse.interpret.visualize` (what image excites a unit?)
and :mod:`~cnncourse.interpret.adversarial` (how little change fools it?).
"""

from .adversarial import fgsm
from .attribution import DeletionCurve, deletion_curve, grad_cam, occlusion, saliency, smoothgrad
from .hooks import Capture, activations, capture, layer_names, resolve_layer
from .visualize import (
    Channel,
    ClassLogit,
    ClassProbability,
    Layer,
    Neuron,
    Objective,
    Visualization,
    deep_dream,
    maximize_activation,
)

__all__ = [
    "Capture",
    "Channel",
    "ClassLogit",
    "ClassProbability",
    "DeletionCurve",
    "Layer",
    "Neuron",
    "Objective",
    "Visualization",
    "activations",
    "capture",
    "deep_dream",
    "deletion_curve",
    "fgsm",
    "grad_cam",
    "layer_names",
    "maximize_activation",
    "occlusion",
    "resolve_layer",
    "saliency",
    "smoothgrad",
]
