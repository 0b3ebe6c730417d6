// lora-host-shared-allocs: the host code's buffers become CUDA managed
// memory (gpu.alloc host_shared), freed through the runtime.
// RUN: lora-opt %s -lora-host-shared-allocs | FileCheck %s

// CHECK-DAG: func.func private @lora_gpu_free_8(memref<*xi8>) attributes {llvm.emit_c_interface}
// CHECK-DAG: func.func private @lora_gpu_free_32(memref<*xf32>) attributes {llvm.emit_c_interface}
// CHECK-LABEL: func.func @step
// CHECK: %[[A:.+]] = gpu.alloc  host_shared () : memref<4096xi8>
// CHECK-NOT: memref.alloc
// CHECK: %[[U:.+]] = memref.cast %[[A]] : memref<4096xi8> to memref<*xi8>
// CHECK: call @lora_gpu_free_8(%[[U]])
// CHECK-NOT: memref.dealloc
func.func @step(%x: memref<16xf32>) {
  %arena = memref.alloc() : memref<4096xi8>
  %c0 = arith.constant 0 : index
  %v = memref.view %arena[%c0][] : memref<4096xi8> to memref<16xf32>
  memref.copy %x, %v : memref<16xf32> to memref<16xf32>
  memref.dealloc %arena : memref<4096xi8>
  return
}

// Each element width has its own free.
// CHECK-LABEL: func.func @floats
// CHECK: gpu.alloc  host_shared () : memref<16xf32>
// CHECK: call @lora_gpu_free_32
func.func @floats() {
  %buffer = memref.alloc() : memref<16xf32>
  memref.dealloc %buffer : memref<16xf32>
  return
}

// Constants are copied into managed memory the kernels can read, and freed
// on return.
// CHECK-LABEL: func.func @constant
// CHECK: %[[G:.+]] = memref.get_global @signs : memref<2xf32>
// CHECK: %[[C:.+]] = gpu.alloc  host_shared () : memref<2xf32>
// CHECK: memref.copy %[[G]], %[[C]]
// CHECK: memref.copy %[[C]], %{{.+}}
// CHECK: call @lora_gpu_free_32
// CHECK-NEXT: return
memref.global "private" constant @signs : memref<2xf32> = dense<[-1.0, 1.0]>
func.func @constant(%out: memref<2xf32>) {
  %g = memref.get_global @signs : memref<2xf32>
  memref.copy %g, %out : memref<2xf32> to memref<2xf32>
  return
}
