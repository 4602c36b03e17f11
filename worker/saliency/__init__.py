"""Saliency methods (pure PyTorch / OpenCV, no I/O): gradient saliency and spectral residual."""
