"""The compact CNN for tiny images."""
import torch

from vision_app.classify.model import small_cnn


def test_small_cnn_shapes():
    model = small_cnn(num_classes=10).eval()
    assert model(torch.zeros(2, 3, 16, 16)).shape == (2, 10)
    assert model(torch.zeros(1, 3, 8, 8)).shape == (1, 10)
