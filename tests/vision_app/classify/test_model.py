"""The compact CNN for tiny images."""
import torch

from vision_app.classify.model import small_cnn


def test_small_cnn_shapes():
    model = small_cnn(num_classes=10).eval()
    assert model(torch.zeros(2, 3, 16, 16)).shape == (2, 10)
    assert model(torch.zeros(1, 3, 8, 8)).shape == (1, 10)


def test_a_torchvision_weight_file_starts_the_photo_recipe(tmp_path, cli, make):
    """``model.weights`` pointing at a torchvision ``resnet18-*.pth`` (made here, as torchvision
    saves it: a plain state dict with a 1000-class head) fills the backbone; the head is new."""
    import torchvision.models as tvm

    from shared.config import load_config
    from shared.runs import latest_run
    from vision_app.classify.config import ClassifyConfig
    from vision_app.classify.model import build_classifier

    reference = tvm.resnet18()
    with torch.no_grad():
        reference.conv1.weight.fill_(0.01)
    weights = tmp_path / "resnet18-f37072fd.pth"
    torch.save(reference.state_dict(), weights)
    overrides = [f"data.path={make.split_root(tmp_path / 'photos', {'train': 6, 'val': 2, 'test': 2})}",
                 f"model.weights={weights}", "model.dropout=0", "data.min_per_class=2"]
    cfg = load_config(ClassifyConfig, "configs/vision_app/classify_photos-quick.yaml", overrides)
    model = build_classifier(cfg.model, 2)
    assert torch.equal(model.conv1.weight, reference.conv1.weight)
    assert torch.equal(model.layer4[1].bn2.running_var, reference.layer4[1].bn2.running_var)
    assert model.fc.out_features == 2
    assert cli("train", "--config", "configs/vision_app/classify_photos-quick.yaml", *overrides,
               "augment.size=32", "train.max_steps=1", "train.batch_size=4", "train.progress=false",
               "train.device=cpu") == 0
    card = (latest_run("vision_app", "classify_photos") / "README.md").read_text()
    assert "resnet18-f37072fd.pth" in card
