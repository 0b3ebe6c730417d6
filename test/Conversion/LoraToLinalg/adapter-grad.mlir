// lora.adapter_grad: three GEMMs by default (the GPU, bf16 GEMM inputs);
// with adapter-grad-calls (the CPU) it stays, marked, and bufferizes into
// one call of the runtime's one-pass kernel.
// RUN: lora-opt %s -split-input-file -convert-lora-to-linalg | FileCheck %s --check-prefix=GEMMS
// RUN: lora-opt %s -split-input-file -convert-lora-to-linalg=adapter-grad-calls | FileCheck %s --check-prefix=KEPT
// RUN: lora-opt %s -split-input-file -convert-lora-to-linalg=adapter-grad-calls -one-shot-bufferize="bufferize-function-boundaries function-boundary-type-conversion=identity-layout-map" | FileCheck %s --check-prefix=CALL

// dU = s·dY·B, scaled; dB = s·dYᵀ·U, scaled; dA = dUᵀ·X from the scaled dU.
// GEMMS-DAG: #[[AT:.+]] = affine_map<(d0, d1, d2) -> (d2, d0)>
// GEMMS-DAG: #[[B:.+]] = affine_map<(d0, d1, d2) -> (d2, d1)>
// GEMMS-LABEL: func.func @adapter
// GEMMS-SAME: (%[[DY:[^:]+]]: tensor<2x3x16xf32>, %[[LB:[^:]+]]: tensor<16x4xf32>, %[[U:[^:]+]]: tensor<2x3x4xf32>, %[[X:[^:]+]]: tensor<2x3x8xf32>)
// GEMMS-NOT: lora.adapter_grad
// GEMMS: %[[DY2:.+]] = tensor.collapse_shape %[[DY]]
// GEMMS: %[[DU:.+]] = linalg.matmul ins(%[[DY2]], %[[LB]] : tensor<6x16xf32>, tensor<16x4xf32>)
// GEMMS: %[[DUS:.+]] = linalg.generic {{.+}} ins(%[[DU]] : tensor<6x4xf32>)
// GEMMS: %[[DU3:.+]] = tensor.expand_shape %[[DUS]]
// GEMMS: %[[DB:.+]] = linalg.matmul indexing_maps = [#[[AT]], #[[B]], #{{.+}}] ins(%{{.+}}, %{{.+}} : tensor<6x16xf32>, tensor<6x4xf32>)
// GEMMS: linalg.generic {{.+}} ins(%[[DB]] : tensor<16x4xf32>)
// GEMMS: %[[DU2:.+]] = tensor.collapse_shape %[[DU3]]
// GEMMS: linalg.matmul indexing_maps = [#[[AT]], #[[B]], #{{.+}}] ins(%[[DU2]], %{{.+}} : tensor<6x4xf32>, tensor<6x8xf32>) outs(%{{.+}} : tensor<4x8xf32>)
// GEMMS: return

// KEPT-LABEL: func.func @adapter
// KEPT: lora.adapter_grad {{.+}} input({{.+}}) scale(2.000000e+00) {lora.runtime_call}
// KEPT-NOT: linalg.matmul

// Views in, new buffers out, leading dims collapsed for the runtime's 2-D
// matrices; the scale goes as an f32.
// CALL-LABEL: func.func @adapter
// CALL-SAME: (%[[DY:[^:]+]]: memref<2x3x16xf32>, %[[LB:[^:]+]]: memref<16x4xf32>, %[[U:[^:]+]]: memref<2x3x4xf32>, %[[X:[^:]+]]: memref<2x3x8xf32>)
// CALL: %[[S:.+]] = arith.constant 2.000000e+00 : f32
// CALL: memref.collapse_shape %[[DY]]
// CALL: %[[DU:.+]] = memref.alloc() {{.*}}: memref<2x3x4xf32>
// CALL: %[[DB:.+]] = memref.alloc() {{.*}}: memref<16x4xf32>
// CALL: %[[DA:.+]] = memref.alloc() {{.*}}: memref<4x8xf32>
// CALL: call @lora_adapter_grad_f32(%[[S]], {{.+}}) : (f32, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>) -> ()
// CALL: return %[[DU]], %[[DB]], %[[DA]]
func.func @adapter(%dy: tensor<2x3x16xf32>, %b: tensor<16x4xf32>, %u: tensor<2x3x4xf32>, %x: tensor<2x3x8xf32>) -> (tensor<2x3x4xf32>, tensor<16x4xf32>, tensor<4x8xf32>) {
  %du, %db, %da = lora.adapter_grad %dy, %b, %u input(%x : tensor<2x3x8xf32>) scale(2.0) : tensor<2x3x16xf32>, tensor<16x4xf32>, tensor<2x3x4xf32> -> tensor<2x3x4xf32>, tensor<16x4xf32>, tensor<4x8xf32>
  return %du, %db, %da : tensor<2x3x4xf32>, tensor<16x4xf32>, tensor<4x8xf32>
}

// -----

// Without X (the base weight trains too): dU and dB only.
// GEMMS-LABEL: func.func @no_input
// GEMMS-COUNT-2: linalg.matmul
// GEMMS-NOT: linalg.matmul
// CALL-LABEL: func.func @no_input
// CALL: call @lora_adapter_grad_ub_f32(
func.func @no_input(%dy: tensor<6x16xf32>, %b: tensor<16x4xf32>, %u: tensor<6x4xf32>) -> (tensor<6x4xf32>, tensor<16x4xf32>) {
  %du, %db = lora.adapter_grad %dy, %b, %u scale(2.0) : tensor<6x16xf32>, tensor<16x4xf32>, tensor<6x4xf32> -> tensor<6x4xf32>, tensor<16x4xf32>
  return %du, %db : tensor<6x4xf32>, tensor<16x4xf32>
}

// -----

// A strided view that cannot collapse in place (a column slice of a
// [2, 3, 16] buffer seen through a non-contiguous row slice) goes as a
// dense copy.
// GEMMS-LABEL: func.func @strided
// CALL-LABEL: func.func @strided
// CALL: memref.subview
// CALL: %[[COPY:.+]] = memref.alloc() : memref<2x2x4xf32>
// CALL: memref.copy %{{.+}}, %[[COPY]]
// CALL: memref.collapse_shape %[[COPY]]
// CALL: call @lora_adapter_grad_ub_f32(
func.func @strided(%dy: tensor<2x2x16xf32>, %b: tensor<16x4xf32>, %big: tensor<2x3x8xf32>) -> (tensor<2x2x4xf32>, tensor<16x4xf32>) {
  %u = tensor.extract_slice %big[0, 0, 4] [2, 2, 4] [1, 1, 1] : tensor<2x3x8xf32> to tensor<2x2x4xf32>
  %du, %db = lora.adapter_grad %dy, %b, %u scale(2.0) : tensor<2x2x16xf32>, tensor<16x4xf32>, tensor<2x2x4xf32> -> tensor<2x2x4xf32>, tensor<16x4xf32>
  return %du, %db : tensor<2x2x4xf32>, tensor<16x4xf32>
}

// -----

// dY every other column of a wider tensor (inner stride 2): the runtime
// needs contiguous rows, so it goes as a dense copy.
// GEMMS-LABEL: func.func @inner_stride
// CALL-LABEL: func.func @inner_stride
// CALL: %[[VIEW:.+]] = memref.subview %{{.+}}[0, 0] [6, 16] [1, 2]
// CALL: %[[COPY:.+]] = memref.alloc() : memref<6x16xf32>
// CALL: memref.copy %[[VIEW]], %[[COPY]]
// CALL: memref.cast %[[COPY]]
// CALL: call @lora_adapter_grad_ub_f32(
func.func @inner_stride(%wide: tensor<6x32xf32>, %b: tensor<16x4xf32>, %u: tensor<6x4xf32>) -> (tensor<6x4xf32>, tensor<16x4xf32>) {
  %dy = tensor.extract_slice %wide[0, 0] [6, 16] [1, 2] : tensor<6x32xf32> to tensor<6x16xf32>
  %du, %db = lora.adapter_grad %dy, %b, %u scale(2.0) : tensor<6x16xf32>, tensor<16x4xf32>, tensor<6x4xf32> -> tensor<6x4xf32>, tensor<16x4xf32>
  return %du, %db : tensor<6x4xf32>, tensor<16x4xf32>
}
