"""Qt widgets that show numpy arrays and plain records; they never import torch or gsplat."""
