"""Pictures, animations and explorers (widgets) for the book's chapters."""

from .animation import OfflineFuncAnimation, offline_jshtml
from .architecture import ArchitectureBlock, architecture, architecture_blocks
from .block_diagram import block_diagram
from .detection import detection_explorer, draw_detections
from .explorers import conv_explorer, kernel_explorer
from .galleries import show_feature_maps, show_kernels
from .interpret_explorer import feature_explorer
from .kernels import apply_kernel, classic_kernels
from .png import array_to_jpeg, array_to_png, figure_to_jpeg, figure_to_png, jpeg_figure, png_figure, png_widget
from .receptive import receptive_field_explorer
from .segmentation import class_colours, colour_labels, legend_handles, segmentation_explorer, segmentation_strip
from .sliding import draw_convolution, sliding_window_animation
from .style import FIGURE_WIDTH, STYLE

__all__ = [
    "ArchitectureBlock",
    "FIGURE_WIDTH",
    "STYLE",
    "OfflineFuncAnimation",
    "apply_kernel",
    "architecture",
    "architecture_blocks",
    "array_to_jpeg",
    "array_to_png",
    "block_diagram",
    "class_colours",
    "classic_kernels",
    "colour_labels",
    "conv_explorer",
    "detection_explorer",
    "draw_convolution",
    "draw_detections",
    "feature_explorer",
    "figure_to_jpeg",
    "figure_to_png",
    "jpeg_figure",
    "kernel_explorer",
    "legend_handles",
    "offline_jshtml",
    "png_figure",
    "png_widget",
    "receptive_field_explorer",
    "segmentation_explorer",
    "segmentation_strip",
    "show_feature_maps",
    "show_kernels",
    "sliding_window_animation",
]
