"""Loading weights trained by other libraries into deepvideo models."""
