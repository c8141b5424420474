"""Model code run inside TFX components (Transform, Trainer) and custom components."""
