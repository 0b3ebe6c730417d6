// lora-data-parallel: each trainable gradient starts its reduction right
// after the op that makes it, so the reduction overlaps the rest of the
// backward; the optimizer reads the reduced values, which it waits for
// just before the first optimizer op. The frozen %w has no gradient and is
// never reduced. The CPU pipeline turns the pair into runtime calls on the
// gradient's buffer.
// RUN: lora-opt %s -lora-autodiff -lora-optimizer -lora-data-parallel | FileCheck %s
// RUN: lora-opt %s -lora-autodiff -lora-optimizer -lora-data-parallel -lora-cpu-pipeline 2>/dev/null | FileCheck %s --check-prefix=CPU
// RUN: lora-opt %s -lora-autodiff -lora-data-parallel | FileCheck %s --check-prefix=NOOPT
// RUN: not lora-opt %s -lora-autodiff -lora-optimizer -lora-data-parallel -lora-data-parallel 2>&1 | FileCheck %s --check-prefix=TWICE

// CHECK-LABEL: func.func @step
// CHECK: %[[DA:.+]] = lora.linear_grad_weight
// CHECK-NEXT: %[[HA:.+]] = lora.all_reduce_start %[[DA]] : tensor<8x16xf32>
// CHECK: %{{.+}}, %[[DN:.+]] = lora.rms_norm_grad
// CHECK-NEXT: %[[HN:.+]] = lora.all_reduce_start %[[DN]] : tensor<16xf32>
// CHECK-NEXT: %[[RA:.+]] = lora.all_reduce_wait %[[HA]] : tensor<8x16xf32>
// CHECK-NEXT: %[[RN:.+]] = lora.all_reduce_wait %[[HN]] : tensor<16xf32>
// CHECK-NEXT: %[[NORM:.+]] = lora.global_norm %[[RA]], %[[RN]]
// CHECK-NEXT: lora.adamw %{{.+}}, %[[RA]],
// CHECK-NEXT: lora.adamw %{{.+}}, %[[RN]],
// CHECK-NOT: all_reduce

// CPU-DAG: llvm.func @_mlir_ciface_lora_all_reduce_start_f32(!llvm.ptr)
// CPU-DAG: llvm.func @_mlir_ciface_lora_all_reduce_wait_f32(!llvm.ptr)
// CPU-LABEL: llvm.func @step
// CPU-COUNT-2: llvm.call @lora_all_reduce_start_f32
// CPU-COUNT-2: llvm.call @lora_all_reduce_wait_f32

// Without an optimizer there is nothing to reduce for.
// NOOPT-NOT: all_reduce

// TWICE: error: 'lora.all_reduce_start' op lora-data-parallel: the step already reduces its gradients

func.func @step(%x: tensor<2x16xf32>,
    %w: tensor<8x16xf32> {lora.role = #lora.role<frozen>, lora.name = "w.weight"},
    %a: tensor<8x16xf32> {lora.role = #lora.role<full>, lora.name = "a.weight"},
    %norm: tensor<16xf32> {lora.role = #lora.role<full>, lora.name = "norm.weight"},
    %labels: tensor<2xi32>) -> tensor<f32> {
  %n = lora.rms_norm %x, %norm eps(1.0e-5) : tensor<2x16xf32>, tensor<16xf32>
  %l1 = lora.linear %n, %w : tensor<2x16xf32>, tensor<8x16xf32> -> tensor<2x8xf32>
  %l2 = lora.linear %n, %a : tensor<2x16xf32>, tensor<8x16xf32> -> tensor<2x8xf32>
  %l = lora.add %l1, %l2 : tensor<2x8xf32>
  %loss = lora.cross_entropy %l, %labels ignore_index(-100) : tensor<2x8xf32>, tensor<2xi32>
  return %loss : tensor<f32>
}
