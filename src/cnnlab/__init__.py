"""cnnlab: a CNN trained from scratch versus transfer learning, on CIFAR and your own images."""

__version__ = "0.1.0"
