"""Dagster resources of Sluice: storage (checkpoints), settings; compute pools and monitoring grow here."""

from resources.settings import SluiceHome, sluice_home
from resources.storage import CheckpointStore, ParquetCheckpointIOManager, atomic_write

__all__ = ["CheckpointStore", "ParquetCheckpointIOManager", "SluiceHome", "atomic_write", "sluice_home"]
