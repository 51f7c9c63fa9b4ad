"""geoforge's trainer: MMCLIP (a CLIP vision encoder fine-tuned with verified hard negatives)
and its evaluation, on torch, open_clip and torch.distributed.

Importing this package needs the ``[train]`` extra (torch, torchvision, open_clip). It
registers the tiny open_clip model configs shipped in ``configs/`` (``geoforge-tiny``) so they
can be built by name with no download.
"""

from __future__ import annotations

from pathlib import Path

import open_clip

CONFIGS = Path(__file__).parent / "configs"
open_clip.add_model_config(CONFIGS)
