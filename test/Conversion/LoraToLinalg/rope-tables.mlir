// convert-lora-to-linalg: every rope and rope_grad of a step with the same
// positions, theta and head_dim share one cos/sin table ([rows, dh/2],
// computed once); the gradient rotates the other way by flipping the
// sine's sign, not by another table.
// RUN: lora-opt %s -convert-lora-to-linalg | FileCheck %s

// CHECK-LABEL: func.func @rope_pair
// CHECK-COUNT-1: math.cos
// CHECK-NOT: math.cos
// CHECK: arith.constant dense<[-1.000000e+00, 1.000000e+00]> : tensor<2xf32>
// CHECK: arith.constant dense<[1.000000e+00, -1.000000e+00]> : tensor<2xf32>
func.func @rope_pair(%q: tensor<2x8x64xf32>, %k: tensor<2x8x32xf32>,
                     %dq: tensor<2x8x64xf32>, %positions: tensor<2x8xi32>)
    -> (tensor<2x8x64xf32>, tensor<2x8x32xf32>, tensor<2x8x64xf32>) {
  %rq = lora.rope %q, %positions theta(1.0e4) head_dim(16) : tensor<2x8x64xf32>, tensor<2x8xi32>
  %rk = lora.rope %k, %positions theta(1.0e4) head_dim(16) : tensor<2x8x32xf32>, tensor<2x8xi32>
  %gq = lora.rope_grad %dq, %positions theta(1.0e4) head_dim(16) : tensor<2x8x64xf32>, tensor<2x8xi32>
  return %rq, %rk, %gq : tensor<2x8x64xf32>, tensor<2x8x32xf32>, tensor<2x8x64xf32>
}

// Another theta needs its own table.
// CHECK-LABEL: func.func @two_thetas
// CHECK-COUNT-2: math.cos
func.func @two_thetas(%q: tensor<2x8x64xf32>, %positions: tensor<2x8xi32>)
    -> (tensor<2x8x64xf32>, tensor<2x8x64xf32>) {
  %a = lora.rope %q, %positions theta(1.0e4) head_dim(16) : tensor<2x8x64xf32>, tensor<2x8xi32>
  %b = lora.rope %q, %positions theta(5.0e5) head_dim(16) : tensor<2x8x64xf32>, tensor<2x8xi32>
  return %a, %b : tensor<2x8x64xf32>, tensor<2x8x64xf32>
}
