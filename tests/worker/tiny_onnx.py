"""Tiny ONNX graphs standing in for rembg's mask models and the WD14 tagger (built with `onnx.helper`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 13
IR_VERSION = 8  # old enough for any onnxruntime that reads opset 13


def _save(graph: onnx.GraphProto, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def write_tiny_mask_model(path: Path, side: int = 320) -> Path:
    """[1,3,side,side] → [1,1,side,side]: the mean over the channels, so bright pixels score high."""
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["input"], ["mask"], axes=[1], keepdims=1)],
        "tiny-mask",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, side, side])],
        [helper.make_tensor_value_info("mask", TensorProto.FLOAT, [1, 1, side, side])],
    )
    return _save(graph, path)


def write_tiny_cloth_model(path: Path, side: int = 32) -> Path:
    """[1,3,side,side] → [1,4,side,side] class scores: bright pixels are class 3 ("full"), dark ones 0."""
    weights = np.zeros((4, 3, 1, 1), np.float32)
    weights[0] = -1.0 / 3
    weights[3] = 1.0 / 3
    bias = np.array([0.0, -100.0, -100.0, 0.0], np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input", "w", "b"], ["classes"])],
        "tiny-cloth",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, side, side])],
        [helper.make_tensor_value_info("classes", TensorProto.FLOAT, [1, 4, side, side])],
        initializer=[numpy_helper.from_array(weights, "w"), numpy_helper.from_array(bias, "b")],
    )
    return _save(graph, path)


def write_tiny_mask_models(masks: Path, names: Sequence[str] = ("isnet-general-use", "u2net")) -> None:
    for name in names:
        write_tiny_mask_model(masks / f"{name}.onnx")


def write_tiny_tagger(path: Path, scores: Sequence[float], side: int = 448) -> Path:
    """[1,side,side,3] → [1,n]: `scores` × (mean pixel / 255), so a white image gives exactly `scores`."""
    scale = (np.asarray(scores, np.float32) / 255.0)[None]
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["input"], ["mean"], axes=[1, 2, 3], keepdims=0),
            helper.make_node("Unsqueeze", ["mean", "axis"], ["column"]),
            helper.make_node("Mul", ["column", "scale"], ["probabilities"]),
        ],
        "tiny-tagger",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, side, side, 3])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [1, len(scores)])],
        initializer=[
            numpy_helper.from_array(np.array([1], np.int64), "axis"),
            numpy_helper.from_array(scale, "scale"),
        ],
    )
    return _save(graph, path)
