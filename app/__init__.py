"""NeuralGS Studio application shell (main window, workers, wiring)."""
