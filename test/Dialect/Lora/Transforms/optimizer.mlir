// lora-optimizer: AdamW state only for trainable parameters, global-norm
// clipping, the learning rate and the step as inputs.
// RUN: lora-opt %s -lora-autodiff -lora-optimizer="weight-decay=0.1 max-grad-norm=2.0" | FileCheck %s
// RUN: lora-opt %s -lora-autodiff -lora-optimizer="max-grad-norm=0" | FileCheck %s --check-prefix=NOCLIP
// RUN: not lora-opt %s -lora-optimizer="beta2=1.0" 2>&1 | FileCheck %s --check-prefix=BETA
// RUN: not lora-opt %s -lora-optimizer 2>&1 | FileCheck %s --check-prefix=NOGRAD

// The frozen %w gets no moments; the 1-d norm weight gets no weight decay.
// CHECK-LABEL: func.func @step
// CHECK-SAME: %[[W:[^:]+]]: tensor<8x16xf32> {lora.name = "w.weight", lora.role = #lora.role<frozen>}
// CHECK-SAME: %[[A:[^:]+]]: tensor<8x16xf32> {lora.name = "a.weight", lora.role = #lora.role<full>}
// CHECK-SAME: %[[N:[^:]+]]: tensor<16xf32> {lora.name = "norm.weight", lora.role = #lora.role<full>}
// CHECK-SAME: %[[AM:[^:]+]]: tensor<8x16xf32> {lora.name = "a.weight.exp_avg"}
// CHECK-SAME: %[[AV:[^:]+]]: tensor<8x16xf32> {lora.name = "a.weight.exp_avg_sq"}
// CHECK-SAME: %[[NM:[^:]+]]: tensor<16xf32> {lora.name = "norm.weight.exp_avg"}
// CHECK-SAME: %[[NV:[^:]+]]: tensor<16xf32> {lora.name = "norm.weight.exp_avg_sq"}
// CHECK-SAME: %[[LR:[^:]+]]: tensor<f32> {lora.name = "lr"}
// CHECK-SAME: %[[STEP:[^:]+]]: tensor<i64> {lora.name = "step"})
// CHECK-SAME: -> (tensor<f32> {lora.name = "loss"}, tensor<f32> {lora.name = "grad_norm"}, tensor<8x16xf32> {lora.name = "a.weight"}, tensor<16xf32> {lora.name = "norm.weight"}, tensor<8x16xf32> {lora.name = "a.weight.exp_avg"}, tensor<16xf32> {lora.name = "norm.weight.exp_avg"}, tensor<8x16xf32> {lora.name = "a.weight.exp_avg_sq"}, tensor<16xf32> {lora.name = "norm.weight.exp_avg_sq"})
// CHECK-NOT: exp_avg
// CHECK: %[[NORM:.+]] = lora.global_norm %[[DA:[^,]+]], %[[DN:[^ ]+]] : tensor<8x16xf32>, tensor<16xf32>
// CHECK: %[[PA:[^,]+]], %[[MA:[^,]+]], %[[VA:[^ ]+]] = lora.adamw %[[A]], %[[DA]], %[[AM]], %[[AV]] lr(%[[LR]]) step(%[[STEP]]) clip(%[[NORM]], 2.000000e+00) betas(9.000000e-01, {{.+}}) eps(1.000000e-08) weight_decay(1.000000e-01)
// CHECK: %[[PN:[^,]+]], %[[MN:[^,]+]], %[[VN:[^ ]+]] = lora.adamw %[[N]], %[[DN]], %[[NM]], %[[NV]] lr(%[[LR]]) step(%[[STEP]]) clip(%[[NORM]], 2.000000e+00) {{.+}} weight_decay(0.000000e+00)
// CHECK: return %{{.+}}, %[[NORM]], %[[PA]], %[[PN]], %[[MA]], %[[MN]], %[[VA]], %[[VN]] :

// Without clipping the norm is still returned, for logging.
// NOCLIP-LABEL: func.func @step
// NOCLIP: %[[NORM:.+]] = lora.global_norm
// NOCLIP-NOT: clip(
// NOCLIP: return %{{.+}}, %[[NORM]],

// Without lora-autodiff there are no gradients to apply.
// NOGRAD: error: lora-optimizer: expected the loss and one gradient per trainable parameter (3 results), got 1; run lora-autodiff first

// BETA: error: lora-optimizer: beta2 must be in [0, 1), got 1.000000e+00
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

