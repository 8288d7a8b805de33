"""Networks assembled from ``course.layers``: ``fc_net.FullyConnectedNet`` and, later, ``cnn``."""
