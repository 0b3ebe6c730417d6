"""Spectral rank of weight changes, as "LoRA Learns Less and Forgets Less"
measures it: the number of singular values needed to explain a fraction
(90%) of the variance (the squared Frobenius norm) of a matrix."""

import json
import struct

import numpy as np


def rank_for_variance(matrix, fraction=0.9):
    """Smallest k such that the k largest singular values hold `fraction` of
    the sum of all squared singular values; 0 for the zero matrix."""
    s = np.linalg.svd(np.asarray(matrix, dtype=np.float64), compute_uv=False)
    energy = s * s
    total = energy.sum()
    if total == 0:
        return 0
    cumulative = np.cumsum(energy) / total
    # The tolerance keeps exact ties (the identity, fraction*n integral)
    # from depending on rounding.
    return int(np.searchsorted(cumulative, fraction - 1e-12) + 1)


def read_safetensors(path, dtypes=None):
    """{name: float32 array} from a safetensors file (F32, F16, BF16, F64),
    with the standard library and numpy only. With `dtypes` (e.g. ("F32",)),
    a tensor stored as another type is an error that names it."""
    with open(path, "rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(size))
        data = f.read()
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        raw = data[begin:end]
        dtype = entry["dtype"]
        if dtypes is not None and dtype not in dtypes:
            raise ValueError(f"{path}: {name} is {dtype}, expected "
                             f"{' or '.join(dtypes)}")
        if dtype == "F32":
            array = np.frombuffer(raw, dtype="<f4")
        elif dtype == "F64":
            array = np.frombuffer(raw, dtype="<f8").astype(np.float32)
        elif dtype == "F16":
            array = np.frombuffer(raw, dtype="<f2").astype(np.float32)
        elif dtype == "BF16":
            bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            array = bits.view(np.float32)
        else:
            continue
        tensors[name] = array.reshape(entry["shape"])
    return tensors
