"""Data layer: sources -> cached uint8 tensors -> splits, stats, batch augmentation and loaders."""

from .augment import NO_AUGMENT, AugmentConfig, augment_batch, resize_batch
from .dataset import Dataset, Split, load_dataset, stratified_split, subsample
from .errors import DataError
from .loader import BatchLoader, fix_size

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

__all__ = ["AugmentConfig", "BatchLoader", "DataError", "Dataset", "IMAGENET_MEAN", "IMAGENET_STD", "NO_AUGMENT",
           "Split", "augment_batch", "fix_size", "load_dataset", "resize_batch",
           "stratified_split", "subsample"]
