"""cause-pl: CAUSE and GANimation as PyTorch Lightning modules."""

__version__ = "0.1.0"
