"""Encoders: the default models (built offline from PyPI), tiny test models and the Encoder wrapper.

Layering: ``optical.models`` imports only ``optical.errors`` / ``optical.storage``; the
training, OT and evaluation layers build on :class:`~optical.models.encoder.Encoder`.
The names below are imported from their modules on first use (:mod:`optical._lazy`).
"""

from optical._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "optical.models.outputs": ("TokenEmbeddings",),
        "optical.models.registry": (
            "DEFAULT_MODELS",
            "DefaultModel",
            "prepare_default_models",
            "prepare_model",
            "resolve_model",
        ),
    },
)
