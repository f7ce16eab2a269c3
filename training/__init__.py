"""Offline training: data → cross-validated evaluation → final fit → published artifact."""

import os

# Quieten TensorFlow's C++ start-up chatter; must happen before anything imports TensorFlow.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
