"""Video recognition models, one module per family, registered by name."""

from deepvideo.models.registry import (
    ModelInfo,
    create_model,
    get_model_info,
    list_models,
    register_model,
)

__all__ = ["ModelInfo", "create_model", "get_model_info", "list_models", "register_model"]
