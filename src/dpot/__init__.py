"""dpot: pre-train, fine-tune and roll out DPOT foundation models for PDEs."""

__version__ = "0.1.0"

__all__ = ["DPOT", "DPOTConfig", "Normalizer", "load_model", "load_normalizer", "rollout", "__version__"]


def __getattr__(name: str):
    """Lazy exports, so `import dpot` (and `dpot --help`) does not import torch."""
    if name in ("DPOT", "DPOTConfig", "load_model", "rollout"):
        import dpot.models

        return getattr(dpot.models, name)
    if name in ("Normalizer", "load_normalizer"):
        import dpot.data.normalize

        return getattr(dpot.data.normalize, name)
    raise AttributeError(f"module 'dpot' has no attribute {name!r}")
