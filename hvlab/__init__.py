"""hvlab: one YAML file to a nested Hyper-V failover cluster with S2D, and back."""

__version__ = "0.1.0"
