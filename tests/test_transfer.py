import pytest
import torch
import torchvision
from torch import nn
from torch.utils.data import TensorDataset

from cnncourse.models import simple_cnn
from cnncourse.transfer import (
    FrozenBatchNorm2d,
    class_subset,
    count_trainable,
    discriminative_param_groups,
    freeze,
    label_budget,
    pseudo_label,
    replace_head,
    steps_loader,
    trainable_parameters,
    unfreeze,
)


def trained_bn(channels=4, seed=0, **kwargs):
    # a batch norm layer whose statistics and affine parameters are not the defaults
    torch.manual_seed(seed)
    bn = nn.BatchNorm2d(channels, **kwargs)
    bn(torch.randn(16, channels, 5, 5) * 3 + 2)  # one train-mode pass moves the running statistics
    if bn.affine:
        with torch.no_grad():
            bn.weight.uniform_(0.5, 2.0)
            bn.bias.uniform_(-1.0, 1.0)
    return bn.eval()


def model_with_stats(seed=0):
    torch.manual_seed(seed)
    model = simple_cnn(num_classes=10, widths=(4, 8))
    model.train()
    with torch.no_grad():
        model(torch.rand(32, 1, 28, 28))  # running statistics away from 0 and 1
    return model.eval()


def bn_buffers(model):
    return {name: b.clone() for name, b in model.named_buffers() if "running" in name}


# ---------------------------------------------------------------- FrozenBatchNorm2d

@pytest.mark.parametrize("affine", [True, False])
def test_frozen_bn_computes_batch_norm_in_eval_mode(affine):
    bn = trained_bn(affine=affine)
    frozen = FrozenBatchNorm2d.from_batch_norm(bn)
    x = torch.randn(3, 4, 6, 6)
    torch.testing.assert_close(frozen(x), bn(x))
    torch.testing.assert_close(frozen.train()(x), bn(x))  # the same in train mode
    assert list(frozen.parameters()) == []


def test_frozen_bn_agrees_with_torchvision():
    bn = trained_bn()
    ours = FrozenBatchNorm2d.from_batch_norm(bn)
    theirs = torchvision.ops.FrozenBatchNorm2d(4, eps=bn.eps)
    theirs.load_state_dict(bn.state_dict())  # torchvision drops num_batches_tracked itself
    x = torch.randn(2, 4, 3, 3)
    torch.testing.assert_close(ours(x), theirs(x))


def test_frozen_bn_round_trip_keeps_every_number():
    bn = trained_bn(eps=1e-3, momentum=0.3)
    back = FrozenBatchNorm2d.from_batch_norm(bn).to_batch_norm().eval()
    assert isinstance(back, nn.BatchNorm2d) and back.eps == 1e-3 and back.momentum == 0.3
    for name, value in bn.state_dict().items():
        assert torch.equal(back.state_dict()[name], value), name
    assert back.weight.requires_grad and isinstance(back.weight, nn.Parameter)
    # same keys as BatchNorm2d: a frozen layer's state dict loads into a plain one
    assert FrozenBatchNorm2d.from_batch_norm(bn).state_dict().keys() == bn.state_dict().keys()


def test_frozen_bn_refuses_a_layer_without_running_statistics():
    with pytest.raises(ValueError, match="batch_norm=False"):
        FrozenBatchNorm2d.from_batch_norm(nn.BatchNorm2d(3, track_running_stats=False))


def test_frozen_bn_keeps_dtype():
    bn = trained_bn().double()
    frozen = FrozenBatchNorm2d.from_batch_norm(bn)
    assert frozen.running_var.dtype == torch.float64 and frozen.num_batches_tracked.dtype == torch.long
    x = torch.randn(2, 4, 3, 3, dtype=torch.float64)
    torch.testing.assert_close(frozen(x), bn(x))


# ---------------------------------------------------------------- freeze and unfreeze

def test_requires_grad_alone_does_not_freeze_batch_norm():
    # the pitfall freeze() exists for: frozen parameters, yet the statistics still move in train mode
    model = model_with_stats()
    for p in model.parameters():
        p.requires_grad_(False)
    before = bn_buffers(model)
    model.train()
    model(torch.rand(8, 1, 28, 28) + 1)
    assert any(not torch.equal(before[name], b) for name, b in bn_buffers(model).items())


def test_freeze_stops_gradients_and_statistics():
    model = model_with_stats()
    x = torch.rand(8, 1, 28, 28)
    expected = model(x)  # eval mode, before freezing
    assert freeze(model.features) is model.features
    assert all(not p.requires_grad for p in model.features.parameters())
    assert all(p.requires_grad for p in model.classifier.parameters())
    assert isinstance(model.features.bn1, FrozenBatchNorm2d) and isinstance(model.features.bn2, FrozenBatchNorm2d)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())

    before = bn_buffers(model)
    model.train()  # what fit() does every epoch
    out = model(x + 1)
    for name, b in bn_buffers(model).items():
        assert torch.equal(before[name], b), f"{name} moved in train mode"
    torch.testing.assert_close(model(x), expected)  # train mode computes what eval mode computed

    out.sum().backward()
    assert all(p.grad is None for p in model.features.parameters())
    assert all(p.grad is not None for p in model.classifier.parameters())


def test_freeze_without_batch_norm_leaves_the_layers():
    model = model_with_stats()
    freeze(model, batch_norm=False)
    assert isinstance(model.features.bn1, nn.BatchNorm2d)
    assert not any(p.requires_grad for p in model.parameters())
    before = bn_buffers(model)
    model.train()(torch.rand(4, 1, 28, 28) + 1)
    assert not torch.equal(before["features.bn1.running_mean"], model.features.bn1.running_mean)


def test_freeze_a_batch_norm_layer_itself_returns_the_replacement():
    bn = trained_bn()
    frozen = freeze(bn)
    assert isinstance(frozen, FrozenBatchNorm2d)
    x = torch.randn(2, 4, 3, 3)
    torch.testing.assert_close(frozen(x), bn(x))
    assert isinstance(unfreeze(frozen), nn.BatchNorm2d)


def test_freeze_refuses_other_batch_norms_unless_asked():
    block = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    with pytest.raises(ValueError, match="batch_norm=False"):
        freeze(block)
    assert block[0].weight.requires_grad  # nothing was changed before the error
    freeze(block, batch_norm=False)
    assert not block[1].weight.requires_grad


def test_unfreeze_restores_a_trainable_network_with_the_same_function():
    model = model_with_stats()
    x = torch.rand(8, 1, 28, 28)
    expected = model(x)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    unfreeze(freeze(model))
    assert all(p.requires_grad for p in model.parameters())
    assert isinstance(model.features.bn1, nn.BatchNorm2d) and model.features.bn1.training is False
    assert model.state_dict().keys() == state.keys()
    for name, value in state.items():
        assert torch.equal(model.state_dict()[name], value), name
    torch.testing.assert_close(model(x), expected)


def test_trainable_parameters_and_counts():
    model = simple_cnn(num_classes=10, widths=(4, 8))
    total = sum(p.numel() for p in model.parameters())
    head = sum(p.numel() for p in model.classifier.parameters())
    assert count_trainable(model) == (total, total)
    freeze(model.features)
    bn_affine = 2 * (4 + 8)  # the batch norms' scales and shifts became buffers
    assert count_trainable(model) == (head, total - bn_affine)
    assert [id(p) for p in trainable_parameters(model)] == [id(p) for p in model.classifier.parameters()]
    freeze(model)
    assert trainable_parameters(model) == [] and count_trainable(model)[0] == 0


# ---------------------------------------------------------------- replace_head

def test_replace_head_of_simple_cnn():
    model = simple_cnn(num_classes=10, widths=(4, 8))
    freeze(model)
    head = replace_head(model, 5)
    assert model.classifier.fc is head and head.in_features == 8 * 7 * 7 and head.out_features == 5
    assert model(torch.rand(2, 1, 28, 28)).shape == (2, 5)
    assert trainable_parameters(model) == [head.weight, head.bias]


@pytest.mark.parametrize(
    ("build", "where"),
    [
        (lambda: torchvision.models.resnet18(weights=None), lambda m: m.fc),
        (lambda: torchvision.models.densenet121(weights=None), lambda m: m.classifier),
        (lambda: torchvision.models.mobilenet_v3_small(weights=None), lambda m: m.classifier[-1]),
    ],
    ids=["resnet18.fc", "densenet.classifier", "mobilenet.classifier[-1]"],
)
def test_replace_head_of_torchvision_models(build, where):
    torch.manual_seed(0)
    model = build().eval()
    old = where(model)
    head = replace_head(model, 3)
    assert where(model) is head and head.in_features == old.in_features
    with torch.no_grad():
        assert model(torch.rand(1, 3, 64, 64)).shape == (1, 3)


def test_replace_head_keeps_dtype_and_bias():
    model = nn.Sequential()
    model.classifier = nn.Sequential(nn.Flatten(), nn.Linear(6, 4, bias=False).double())
    head = replace_head(model, 2)
    assert head.weight.dtype == torch.float64 and head.bias is None


@pytest.mark.parametrize("bad", [0, -1, 2.0, True])
def test_replace_head_rejects_bad_num_classes(bad):
    with pytest.raises(ValueError, match="num_classes"):
        replace_head(simple_cnn(), bad)


def test_replace_head_says_where_it_looked():
    with pytest.raises(ValueError, match="model.fc"):
        replace_head(nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU()), 3)


# ---------------------------------------------------------------- class_subset

def toy_dataset(n=300, num_classes=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(num_classes, (n,), generator=g)
    X = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 1, 2, 2).clone()  # X remembers its index
    return TensorDataset(X, y)


def test_class_subset_counts_and_relabels():
    ds = toy_dataset()
    X, y = ds.tensors
    sub = class_subset(ds, [4, 1, 2], per_class=7, seed=3)
    Xs, ys = sub.tensors
    assert ys.bincount().tolist() == [7, 7, 7]
    original = y[Xs[:, 0, 0, 0].long()]  # the labels the kept images had
    assert torch.equal(torch.tensor([4, 1, 2])[ys], original)  # new label i <-> classes[i]
    assert Xs[:, 0, 0, 0].diff().gt(0).all()  # original order kept, no repeats


def test_class_subset_without_budget_keeps_every_example_of_the_classes():
    ds = toy_dataset()
    y = ds.tensors[1]
    sub = class_subset(ds, [5, 0], relabel=False)
    assert len(sub) == int(((y == 5) | (y == 0)).sum())
    assert set(sub.tensors[1].tolist()) == {0, 5}


def test_class_subset_is_deterministic_and_nested():
    ds = toy_dataset()
    ids = lambda sub: set(sub.tensors[0][:, 0, 0, 0].long().tolist())  # noqa: E731
    a = class_subset(ds, [0, 1, 2], per_class=5, seed=1)
    b = class_subset(ds, [0, 1, 2], per_class=5, seed=1)
    assert torch.equal(a.tensors[0], b.tensors[0]) and torch.equal(a.tensors[1], b.tensors[1])
    assert ids(a) != ids(class_subset(ds, [0, 1, 2], per_class=5, seed=2))
    assert ids(a) < ids(class_subset(ds, [0, 1, 2], per_class=20, seed=1))  # budgets are nested
    # the images drawn for class 2 do not depend on the other classes asked for
    alone = class_subset(ds, [2], per_class=5, seed=1, relabel=False)
    assert ids(alone) <= ids(a)


@pytest.mark.parametrize(
    ("classes", "per_class", "message"),
    [
        ([], None, "non-empty"),
        ([1, 1], None, "distinct"),
        ([7], None, "does not occur"),
        ([0], 0, "positive"),
        ([0], 10_000, "fewer than per_class"),
    ],
)
def test_class_subset_rejects_bad_requests(classes, per_class, message):
    with pytest.raises(ValueError, match=message):
        class_subset(toy_dataset(), classes, per_class=per_class)


def test_class_subset_rejects_float_labels():
    ds = TensorDataset(torch.zeros(4, 1), torch.zeros(4))
    with pytest.raises(ValueError, match="integer"):
        class_subset(ds, [0])


def test_freeze_and_unfreeze_named_parts_in_place():
    model = model_with_stats()
    assert freeze(model.features, "conv1", "bn1") is model.features
    assert isinstance(model.features.bn1, FrozenBatchNorm2d) and isinstance(model.features.bn2, nn.BatchNorm2d)
    assert not model.features.conv1.weight.requires_grad and model.features.conv2.weight.requires_grad
    freeze(model, "features.bn2")  # dotted names reach deeper
    assert isinstance(model.features.bn2, FrozenBatchNorm2d)
    unfreeze(model, "features.bn1")
    assert isinstance(model.features.bn1, nn.BatchNorm2d) and model.features.bn1.weight.requires_grad
    assert not model.features.conv1.weight.requires_grad  # only the named part thawed


def test_freeze_a_slice_does_not_reach_the_model():
    # documented limitation: a slice of a Sequential is a new container
    model = model_with_stats()
    freeze(model.features[:3])
    assert isinstance(model.features.bn1, nn.BatchNorm2d)  # swapped in the slice only
    assert not model.features.conv1.weight.requires_grad  # but the parameters are shared, so they froze


def test_freeze_with_an_unknown_name_changes_nothing():
    model = model_with_stats()
    with pytest.raises(ValueError, match="no submodule 'conv9'"):
        freeze(model.features, "conv1", "conv9")
    assert model.features.conv1.weight.requires_grad


# ---------------------------------------------------------------- label_budget

def test_label_budget_is_class_subset_plus_the_rest():
    ds = toy_dataset()
    X, y = ds.tensors
    labelled, pool = label_budget(ds, 4, seed=2)
    same = class_subset(ds, range(6), per_class=4, seed=2, relabel=False)
    assert torch.equal(labelled.tensors[0], same.tensors[0]) and torch.equal(labelled.tensors[1], same.tensors[1])
    assert labelled.tensors[1].bincount().tolist() == [4] * 6
    ids = lambda d: d.tensors[0][:, 0, 0, 0].long().tolist()  # noqa: E731
    assert sorted(ids(labelled) + ids(pool)) == list(range(len(y)))  # a partition
    assert torch.equal(pool.tensors[1], y[ids(pool)])  # the pool keeps its true labels


def test_label_budgets_are_nested_and_pools_shrink():
    ds = toy_dataset()
    ids = lambda d: set(d.tensors[0][:, 0, 0, 0].long().tolist())  # noqa: E731
    small, small_pool = label_budget(ds, 2, seed=5)
    large, large_pool = label_budget(ds, 10, seed=5)
    assert ids(small) < ids(large) and ids(large_pool) < ids(small_pool)


@pytest.mark.parametrize(("per_class", "message"), [(0, "positive"), (None, "positive int,"), (10_000, "fewer than")])
def test_label_budget_rejects_bad_budgets(per_class, message):
    with pytest.raises(ValueError, match=message):
        label_budget(toy_dataset(), per_class)


def test_label_budget_needs_a_labelled_tensor_dataset():
    with pytest.raises(ValueError, match="TensorDataset"):
        label_budget(TensorDataset(torch.zeros(3, 2)), 1)


# ---------------------------------------------------------------- steps_loader

@pytest.mark.parametrize(("n", "batch_size", "steps"), [(10, 4, 7), (5, 32, 3), (64, 32, 4), (1, 8, 2)])
def test_steps_loader_takes_exactly_the_steps(n, batch_size, steps):
    ds = TensorDataset(torch.arange(n), torch.zeros(n, dtype=torch.long))
    batches = [x for x, _ in steps_loader(ds, batch_size, steps, seed=1)]
    assert len(batches) == steps and all(len(b) == min(batch_size, n) for b in batches)
    assert all(len(set(b.tolist())) == len(b) for b in batches)  # no example twice in a batch


def test_steps_loader_sees_every_example_once_per_pass():
    ds = TensorDataset(torch.arange(12), torch.zeros(12, dtype=torch.long))
    seen = torch.cat([x for x, _ in steps_loader(ds, 4, 9, seed=0)])  # three passes of 12
    for p in range(3):
        assert sorted(seen[12 * p : 12 * (p + 1)].tolist()) == list(range(12))
    assert not torch.equal(seen[:12], seen[12:24])  # each pass is shuffled anew


def test_steps_loader_is_seeded_and_keeps_pairs_together():
    ds = TensorDataset(torch.arange(20), torch.arange(20) * 10)
    first = [x for x, _ in steps_loader(ds, 6, 5, seed=3)]
    again = [x for x, _ in steps_loader(ds, 6, 5, seed=3)]
    other = [x for x, _ in steps_loader(ds, 6, 5, seed=4)]
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not all(torch.equal(a, b) for a, b in zip(first, other))
    assert all(torch.equal(y, x * 10) for x, y in steps_loader(ds, 6, 5))


def test_steps_loader_makes_one_fit_epoch_of_the_steps():
    from cnncourse import fit

    torch.manual_seed(0)
    ds = TensorDataset(torch.randn(7, 3), torch.randint(2, (7,)))
    model = nn.Linear(3, 2)
    counted = []

    class Count:
        stop_training = False

        def on_train_begin(self, model):
            pass

        def on_batch_end(self, step):
            counted.append(step)

        def on_epoch_end(self, epoch, logs):
            pass

        def on_train_end(self, history):
            pass

    history = fit(model, steps_loader(ds, 4, 11), epochs=1, callbacks=[Count()], device="cpu", progress=False)
    assert len(history) == 1 and counted == list(range(11))


@pytest.mark.parametrize(("batch_size", "steps"), [(0, 5), (4, 0), (True, 5), (4, 2.5)])
def test_steps_loader_rejects_bad_sizes(batch_size, steps):
    ds = TensorDataset(torch.zeros(4), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="positive int"):
        steps_loader(ds, batch_size, steps)


def test_steps_loader_rejects_an_empty_data_set():
    with pytest.raises(ValueError, match="empty"):
        steps_loader(TensorDataset(torch.zeros(0), torch.zeros(0, dtype=torch.long)), 4, 2)


# ---------------------------------------------------------------- discriminative_param_groups

def test_discriminative_groups_lower_the_rate_towards_the_input():
    model = simple_cnn(num_classes=5, widths=(4, 8))
    f = model.features
    stages = [[*f.conv1.parameters(), *f.bn1.parameters()], [*f.conv2.parameters(), *f.bn2.parameters()],
              model.classifier]
    groups = discriminative_param_groups(stages, lr=1e-2, lr_decay=0.5)
    assert [g["lr"] for g in groups] == pytest.approx([2.5e-3, 5e-3, 1e-2])
    assert [len(g["params"]) for g in groups] == [3, 3, 2]  # conv weight, bn weight and bias; fc weight and bias
    optimizer = torch.optim.Adam(groups)
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([2.5e-3, 5e-3, 1e-2])


def test_discriminative_groups_skip_what_is_frozen():
    model = simple_cnn(num_classes=5, widths=(4, 8))
    freeze(model.features, "conv1", "bn1")
    f = model.features
    stages = [[*f.conv1.parameters(), *f.bn1.parameters()], [*f.conv2.parameters(), *f.bn2.parameters()],
              model.classifier]
    groups = discriminative_param_groups(stages, lr=1e-3)
    # the frozen first stage is left out, and the others keep their places' rates
    assert [g["lr"] for g in groups] == pytest.approx([1e-4, 1e-3])
    trainable = {id(p) for g in groups for p in g["params"]}
    assert trainable == {id(p) for p in trainable_parameters(model)}


def test_discriminative_groups_with_no_decay_are_one_rate():
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    assert [g["lr"] for g in discriminative_param_groups(list(model), lr=0.1, lr_decay=1.0)] == [0.1, 0.1]


def test_discriminative_groups_refuse_mistakes():
    layer = nn.Linear(2, 2)
    with pytest.raises(ValueError, match="two stages"):
        discriminative_param_groups([layer, [layer.weight]], lr=1e-3)
    with pytest.raises(ValueError, match="nothing to train"):
        discriminative_param_groups([freeze(nn.Linear(2, 2), batch_norm=False)], lr=1e-3)
    with pytest.raises(ValueError, match="positive"):
        discriminative_param_groups([layer], lr=0.0)
    with pytest.raises(ValueError, match="positive"):
        discriminative_param_groups([layer], lr=1e-3, lr_decay=-0.1)


# ---------------------------------------------------------------- pseudo_label

def test_pseudo_label_balances_the_classes():
    # class 0 is predicted five times, most confidently; class 1 twice, class 2 never
    logits = torch.tensor([[5.0, 0, 0], [4, 0, 0], [3, 0, 0], [2, 0, 0], [1, 0, 0], [0, 2, 0], [0, 1, 0]])
    index, labels = pseudo_label(logits, per_class=2)
    assert index.tolist() == [0, 1, 5, 6] and labels.tolist() == [0, 0, 1, 1]


def test_pseudo_label_threshold_and_both_rules():
    logits = torch.tensor([[3.0, 0.0], [0.1, 0.0], [0.0, 4.0], [0.0, 3.5], [0.0, 0.2]])
    probability = logits.softmax(dim=1).max(dim=1).values
    index, labels = pseudo_label(logits, threshold=0.9)
    assert set(index.tolist()) == {i for i, p in enumerate(probability.tolist()) if p >= 0.9} == {0, 2, 3}
    assert labels.tolist() == logits.argmax(dim=1)[index].tolist()
    index, _ = pseudo_label(logits, threshold=0.9, per_class=1)
    assert index.tolist() == [0, 2]  # the surest of each class, if sure enough


def test_pseudo_label_picks_what_a_model_is_surest_about():
    # on real predictions, the kept examples are at least as confident as every other one of their class
    torch.manual_seed(0)
    logits = torch.randn(200, 4) * 3
    index, labels = pseudo_label(logits, per_class=10)
    confidence, guess = logits.softmax(dim=1).max(dim=1)
    for c in range(4):
        kept = index[labels == c]
        rest = torch.tensor([i for i in torch.nonzero(guess == c).flatten().tolist() if i not in set(kept.tolist())])
        assert len(kept) == 10 and confidence[kept].min() >= confidence[rest].max()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({}, "per_class, threshold"), ({"per_class": 0}, "positive"), ({"threshold": 1.5}, "between 0 and 1")],
)
def test_pseudo_label_rejects_bad_rules(kwargs, message):
    with pytest.raises(ValueError, match=message):
        pseudo_label(torch.zeros(3, 2), **kwargs)


def test_pseudo_label_needs_a_matrix():
    with pytest.raises(ValueError, match="N x num_classes"):
        pseudo_label(torch.zeros(3), per_class=1)
