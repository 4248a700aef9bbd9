"""dpot: pre-train, fine-tune and roll out DPOT foundation models for PDEs."""

__version__ = "0.1.0"
