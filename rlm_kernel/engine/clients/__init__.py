"""Model clients, one per backend. Which one a run uses is decided in engine/clientset.py."""
