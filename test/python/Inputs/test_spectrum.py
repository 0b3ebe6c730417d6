"""lora_mlir.spectrum against matrices of known spectrum, and the
safetensors reader against a file Hugging Face's library wrote."""
import math
import sys
import unittest

import numpy as np

from lora_mlir.spectrum import rank_for_variance, read_safetensors


def with_singular_values(values, rows=20, cols=30, seed=0):
    rng = np.random.default_rng(seed)
    u, _ = np.linalg.qr(rng.standard_normal((rows, rows)))
    v, _ = np.linalg.qr(rng.standard_normal((cols, cols)))
    s = np.zeros((rows, cols))
    for i, value in enumerate(values):
        s[i, i] = value
    return u @ s @ v.T


class RankForVariance(unittest.TestCase):
    def test_equal_singular_values(self):
        # k equal values: 90% of the variance needs ceil(0.9 k) of them.
        for k in (1, 2, 5, 10, 17):
            with self.subTest(k=k):
                self.assertEqual(rank_for_variance(
                    with_singular_values([1.0] * k)), math.ceil(0.9 * k))

    def test_identity(self):
        self.assertEqual(rank_for_variance(np.eye(10)), 9)
        self.assertEqual(rank_for_variance(np.eye(20)), 18)

    def test_dominant_direction(self):
        # 100 of 109: one value explains 91.7%.
        self.assertEqual(rank_for_variance(
            with_singular_values([10.0] + [1.0] * 9)), 1)
        # 100 of 125: the big one and 13 of the 25 small ones reach 112.5.
        self.assertEqual(rank_for_variance(
            with_singular_values([10.0] + [1.0] * 25, rows=30, cols=30)), 14)

    def test_low_rank_product_and_zero(self):
        rng = np.random.default_rng(1)
        delta = rng.standard_normal((24, 3)) @ rng.standard_normal((3, 16))
        self.assertLessEqual(rank_for_variance(delta), 3)
        self.assertEqual(rank_for_variance(np.zeros((4, 5))), 0)

    def test_gaussian_is_high_rank(self):
        # Marchenko-Pastur: a square Gaussian needs about half its dims.
        rng = np.random.default_rng(2)
        self.assertGreater(rank_for_variance(rng.standard_normal((64, 64))),
                           25)


class ReadSafetensors(unittest.TestCase):
    def test_reference_file(self):
        tensors = read_safetensors(sys.argv[1])
        q = tensors["model.layers.0.self_attn.q_proj.weight"]
        self.assertEqual(q.shape, (3, 4))
        np.testing.assert_array_equal(q.ravel(),
                                      np.arange(12) * 0.5 - 1.0)
        np.testing.assert_array_equal(tensors["model.norm.weight"],
                                      np.arange(5) / 8.0)  # from F16
        self.assertNotIn("step", tensors)  # integers are not weights

    def test_dtypes_names_a_tensor_of_another_type(self):
        # The reference file's norm is its one F16 tensor.
        with self.assertRaisesRegex(ValueError,
                                    r"model\.norm\.weight is F16, expected "
                                    r"F32 or F64 or I64"):
            read_safetensors(sys.argv[1], dtypes=("F32", "F64", "I64"))
        tensors = read_safetensors(sys.argv[1],
                                   dtypes=("F32", "F64", "I64", "F16"))
        self.assertEqual(tensors["model.norm.weight"].dtype, np.float32)

if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]], verbosity=2)
