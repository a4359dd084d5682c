"""Models: scratch CNNs (`scratch.py`) and pretrained backbones (`backbones.py`)."""
