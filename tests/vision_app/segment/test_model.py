"""The segmentation loss on hand-made logits."""
import torch

from vision_app.segment.train import soft_dice_loss


def test_soft_dice_loss_perfect_wrong_and_ignored_pixels():
    masks = torch.tensor([[[0, 1], [2, 255]]])
    perfect = torch.nn.functional.one_hot(masks.clamp(max=2), 3).permute(0, 3, 1, 2).float() * 50
    assert soft_dice_loss(perfect, masks).item() < 1e-3  # the ignored pixel's logits do not count
    wrong = perfect.roll(1, dims=1)
    assert soft_dice_loss(wrong, masks).item() > 0.5
