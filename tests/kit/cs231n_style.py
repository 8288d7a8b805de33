"""Notebooks written the way CS231n's assignment-2 notebooks are (our own text and code):
Colab / Drive set-up first, ``cs231n`` imports, star imports that the later cells rely on,
legacy ``np.random.seed`` seeding, and a Cython build cell. The port tests use them."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

COLAB_SETUP = r"""# Colab only: make your Drive copy of the assignment visible to this VM.
from google.colab import drive
drive.mount('/content/drive')
FOLDERNAME = 'myclass/assignment2/'
import sys
sys.path.append('/content/drive/My Drive/{}'.format(FOLDERNAME))
%cd /content/drive/My\ Drive/$FOLDERNAME/cs231n/datasets/
!bash get_datasets.sh
%cd /content/drive/My\ Drive/$FOLDERNAME"""

IMPORTS = """# Set-up used by every section below.
import numpy as np
import matplotlib.pyplot as plt
from cs231n.classifiers.fc_net import *
from cs231n.gradient_check import eval_numerical_gradient_array
from cs231n.solver import Solver
import cs231n.layers as layer_module

%matplotlib inline
%load_ext autoreload
%autoreload 2

def worst_rel(a, b):
    # largest relative difference, with a floor so two zeros agree
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))"""

AFFINE = """np.random.seed(231)
x = np.random.randn(4, 5)
w = np.random.randn(5, 3)
b = np.random.randn(3)
out, cache = affine_forward(x, w, b)
dout = np.random.randn(*out.shape)
dx, dw, db = affine_backward(dout, cache)
dx_num = eval_numerical_gradient_array(lambda v: affine_forward(v, w, b)[0], x, dout)
print('affine dx ok:', worst_rel(dx_num, dx) < 1e-7)
print('relu via module ok:', layer_module.relu_forward(np.array([-1.0, 2.0]))[0].tolist())"""

LOSSES = """np.random.seed(231)
scores = 0.001 * np.random.randn(50, 4)
labels = np.random.randint(4, size=50)
svm, _ = svm_loss(scores, labels)
soft, _ = softmax_loss(scores, labels)
print('svm loss near 3:', abs(svm - 3) < 0.05)
print('softmax loss near log 4:', abs(soft - np.log(4)) < 0.05)
cifar10_dir = 'cs231n/datasets/cifar-10-batches-py'  # unused here: the kit finds data"""

TRAIN = """def train_once():
    np.random.seed(231)
    data = {'X_train': np.random.randn(40, 3, 2, 2), 'y_train': np.random.randint(5, size=40),
            'X_val': np.random.randn(10, 3, 2, 2), 'y_val': np.random.randint(5, size=10)}
    model = TwoLayerNet(input_dim=3 * 2 * 2, hidden_dim=20, num_classes=5, weight_scale=1e-2)
    solver = Solver(model, data, update_rule='sgd', optim_config={'learning_rate': 1e-1},
                    lr_decay=0.95, num_epochs=3, batch_size=10, print_every=100, verbose=False)
    solver.train()
    return solver.loss_history

print('legacy seeding repeats training:', train_once() == train_once())"""

CYTHON_BUILD = r"""# Colab only: compile the fast convolution extension.
%cd /content/drive/My\ Drive/$FOLDERNAME/cs231n/
!python setup.py build_ext --inplace"""

GAPS = """from cs231n.layers import *
from cs231n.gradient_check import eval_numerical_gradient_blobs
from cs231n.no_such_module import *
import cs231n.data_utils
images = cs231n.data_utils.load_tiny_imagenet('somewhere')
grid = vis_nn([[images]])
print(len(grid))
affine_forward?"""


def fc_style() -> nbformat.NotebookNode:
    """A notebook that runs on ``course`` once ported (random data, no download)."""
    return new_notebook(cells=[
        new_markdown_cell("# Fully connected nets, CS231n style"),
        new_code_cell(COLAB_SETUP),
        new_code_cell(IMPORTS),
        new_markdown_cell("## Affine layer"),
        new_code_cell(AFFINE),
        new_markdown_cell("## Loss functions"),
        new_code_cell(LOSSES),
        new_markdown_cell("## Two-layer net with a Solver"),
        new_code_cell(TRAIN),
    ])


def gaps_style() -> nbformat.NotebookNode:
    """A notebook that uses names ``course`` does not have, and a Cython build cell."""
    return new_notebook(cells=[
        new_markdown_cell("# Convolutional nets, CS231n style"),
        new_code_cell(CYTHON_BUILD),
        new_markdown_cell("## Things the kit does not have"),
        new_code_cell(GAPS),
        new_code_cell("def broken(:\n    pass"),
    ])


def write(nb: nbformat.NotebookNode, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path
