"""Pictures, animations and explorers (widgets) for the book's chapters."""

from .animation import OfflineFuncAnimation, offline_jshtml
from .architecture import ArchitectureBlock, architecture, architecture_blocks
from .block_diagram import block_diagram
from .explorers import conv_explorer, kernel_explorer
from .galleries import show_feature_maps, show_kernels
from .interpret_explorer import feature_explorer
from .kernels import apply_kernel, classic_kernels
from .png import array_to_jpeg, array_to_png, figure_to_jpeg, figure_to_png, jpeg_figure, png_figure, png_widget
from .receptive import receptive_field_explorer
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
    "classic_kernels",
    "conv_explorer",
    "draw_convolution",
    "feature_explorer",
    "figure_to_jpeg",
    "figure_to_png",
    "jpeg_figure",
    "kernel_explorer",
    "offline_jshtml",
    "png_figure",
    "png_widget",
    "receptive_field_explorer",
    "show_feature_maps",
    "show_kernels",
    "sliding_window_animation",
]
