// Causal attention in blocks of 128 query rows: rows [r, r + 128) see keys
// [0, r + 128) only, so a 256-token head computes a 128 x 128 and a
// 128 x 256 score block (3/4 of 256 x 256), forward and backward. Shorter
// sequences, or lengths that are not multiples of 128, keep one block.
// RUN: lora-opt %s -split-input-file -convert-lora-to-linalg | FileCheck %s

// CHECK-LABEL: func.func @blocks
// CHECK: scf.for
// The first block: queries 0-127 against keys 0-127.
// CHECK-DAG: %[[Q0:.+]] = tensor.extract_slice %{{.+}}[%{{.+}}, 0, %{{.+}}, %{{.+}}, 0] [1, 128, 1, 1, 4]
// CHECK-DAG: %[[K0:.+]] = tensor.extract_slice %{{.+}}[%{{.+}}, 0, %{{.+}}, 0] [1, 128, 1, 4]
// CHECK: linalg.matmul {{.+}} ins(%[[Q0]], %[[K0]] : {{.+}}) -> tensor<128x128xf32>
// The second: queries 128-255 against keys 0-255.
// CHECK-DAG: %[[K1:.+]] = tensor.extract_slice %{{.+}}[%{{.+}}, 0, %{{.+}}, 0] [1, 256, 1, 4]
// CHECK-DAG: %[[Q1:.+]] = tensor.extract_slice %{{.+}}[%{{.+}}, 128, %{{.+}}, %{{.+}}, 0] [1, 128, 1, 1, 4]
// CHECK: linalg.matmul {{.+}} ins(%[[Q1]], %[[K1]] : {{.+}}) -> tensor<128x256xf32>
// CHECK-NOT: linalg.matmul {{.+}} -> tensor<256x256xf32>
func.func @blocks(%q: tensor<1x256x8xf32>, %k: tensor<1x256x4xf32>, %v: tensor<1x256x4xf32>) -> tensor<1x256x8xf32> {
  %o = lora.attention %q, %k, %v heads(2) kv_heads(1) head_dim(4) : tensor<1x256x8xf32>, tensor<1x256x4xf32>, tensor<1x256x4xf32>
  return %o : tensor<1x256x8xf32>
}

// -----

// CHECK-LABEL: func.func @one_block
// CHECK: linalg.matmul {{.+}} -> tensor<200x200xf32>
func.func @one_block(%q: tensor<1x200x8xf32>, %k: tensor<1x200x4xf32>, %v: tensor<1x200x4xf32>) -> tensor<1x200x8xf32> {
  %o = lora.attention %q, %k, %v heads(2) kv_heads(1) head_dim(4) : tensor<1x200x8xf32>, tensor<1x200x4xf32>, tensor<1x200x4xf32>
  return %o : tensor<1x200x8xf32>
}
