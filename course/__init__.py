"""Support package for the neural-network notebooks.

Modules follow the order the notebooks teach them: ``layers`` and ``layer_utils``
(forward/backward pairs), ``gradient_check`` (numeric gradients and the check lines
notebooks print), ``optim`` (update rules), ``solver`` (the training loop),
``classifiers`` (the networks) and ``data_utils`` (CIFAR-10 and the embedded digits).
"""

__version__ = "0.1.0"
