"""The auto-decoder benchmark run evaluated on 10k train / 2k test subsets: its code after 0, 10 (the
default) and 50 optimisation steps from the amortised encoder, and its Conv6 map.

    python bench/autodecoder_codes.py
"""
import dataclasses

import torch

torch.set_num_threads(1)
from selfsup.api import load
from selfsup.data import load_dataset
from selfsup.eval import extract_features, knn_accuracy, linear_probe
from selfsup.eval.protocols import kmeans_scores

tr = load_dataset("fashion-mnist","train").random_subset(10000, 1)
te = load_dataset("fashion-mnist","test").random_subset(2000, 0)
m = load("bench/results/runs/autodecoder-10000x10")
dev = torch.device("cpu")
for steps in (0, 10, 50):
    m.params = dataclasses.replace(m.params, infer_steps=steps)
    a = extract_features(m.embed, tr, dev, 1000, False); b = extract_features(m.embed, te, dev, 1000, False)
    print(steps, "probe", round(linear_probe(a, tr.labels, b, te.labels, 30, progress=False)["accuracy"],4),
          "knn", round(knn_accuracy(a, tr.labels, b, te.labels)["accuracy"],4),
          "nmi", round(kmeans_scores(a, b, te.labels, 10)["nmi"],4), flush=True)
a = extract_features(m.backbone, tr, dev, 1000, False); b = extract_features(m.backbone, te, dev, 1000, False)
print("conv6 map probe", round(linear_probe(a, tr.labels, b, te.labels, 30, progress=False)["accuracy"],4))
