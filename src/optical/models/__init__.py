"""Encoders: the default models (built offline from PyPI), tiny test models and the Encoder wrapper.

Layering: ``optical.models`` imports only ``optical.errors`` / ``optical.storage``; the
training, OT and evaluation layers build on :class:`~optical.models.encoder.Encoder`.
"""

from optical.models.outputs import TokenEmbeddings
from optical.models.registry import DEFAULT_MODELS, DefaultModel, prepare_default_models, prepare_model, resolve_model

__all__ = [
    "DEFAULT_MODELS",
    "DefaultModel",
    "TokenEmbeddings",
    "prepare_default_models",
    "prepare_model",
    "resolve_model",
]
