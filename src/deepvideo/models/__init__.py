"""Video recognition models, one module per family, registered by name."""

from deepvideo.models.registry import (
    ModelInfo,
    Published,
    create_model,
    get_model_info,
    list_models,
    register_model,
)

__all__ = ["ModelInfo", "Published", "create_model", "get_model_info", "list_models", "register_model"]
