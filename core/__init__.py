"""ConvNet Studio engine: models, weights, images, inference. Never imports Qt."""

__version__ = "0.1.0"
