"""Networks assembled from ``course.layers``: ``fc_net`` (``FullyConnectedNet``, ``TwoLayerNet``)
and ``cnn`` (the convolutional network of notebook 4)."""
