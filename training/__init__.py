"""Offline training: data → cross-validated evaluation → final fit → published artifact."""

import logging
import os

# Quieten TensorFlow's C++ start-up chatter; must happen before anything imports TensorFlow.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Every split fits a fresh model, so TensorFlow's "function retracing" warning is expected noise.
logging.getLogger("tensorflow").setLevel(logging.ERROR)
