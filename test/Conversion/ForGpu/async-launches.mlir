// lora-async-launches: kernels and the runtime's GPU calls queue on one
// stream; the host waits only before it touches their buffers, calls
// something else, or returns.
// RUN: lora-opt %s -split-input-file -lora-async-launches | FileCheck %s

module attributes {gpu.container_module} {
  gpu.module @kernels {
    gpu.func @scale(%a: memref<64xf32>) kernel {
      gpu.return
    }
  }
  func.func private @lora_gpu_sgemm_f32(i32, i32, i32, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>) attributes {llvm.emit_c_interface}
  func.func private @lora_gpu_free_32(memref<*xf32>) attributes {llvm.emit_c_interface}
  func.func private @lora_all_reduce_start_f32(memref<*xf32>) attributes {llvm.emit_c_interface}
  func.func private @report(memref<*xf32>)

  // CHECK-LABEL: func.func @step
  // CHECK-SAME: (%[[DEV:[^:]+]]: memref<64xf32>, %[[LR:[^:]+]]: memref<f32>, %[[OUT:[^:]+]]: memref<f32>, %[[M:[^:]+]]: memref<8x8xf32>)
  // CHECK: %[[S:.+]] = gpu.wait async
  // Reading the learning rate (no kernel uses it) does not wait.
  // CHECK-NOT: gpu.wait [
  // CHECK: memref.load %[[LR]][]
  // CHECK-NEXT: gpu.launch_func async [%[[S]]] @kernels::@scale
  // CHECK-NEXT: gpu.launch_func async [%[[S]]] @kernels::@scale
  // The GEMM queues on the same stream; freeing a buffer waits for nothing.
  // CHECK-NOT: gpu.wait [
  // CHECK: call @lora_gpu_sgemm_f32
  // CHECK-NOT: gpu.wait [
  // CHECK: call @lora_gpu_free_32
  // A host loop over a kernel's buffer: one wait before it.
  // CHECK-NEXT: gpu.wait [%[[S]]]
  // CHECK-NEXT: scf.for
  // CHECK-NOT: gpu.wait
  // CHECK: memref.load %[[DEV]]
  // CHECK-NOT: gpu.wait
  // CHECK: memref.store {{.*}} %[[OUT]]
  // CHECK-NEXT: }
  // A loop that launches and then reads: the wait is inside, before the read.
  // CHECK-NEXT: scf.for
  // CHECK-NEXT: gpu.launch_func async [%[[S]]] @kernels::@scale
  // CHECK-NEXT: gpu.wait [%[[S]]]
  // CHECK-NEXT: memref.load %[[DEV]]
  // CHECK-NEXT: memref.store
  // CHECK-NEXT: }
  // The all-reduce waits for the stream itself, when it communicates;
  // another function waits first, and so does return.
  // CHECK-NEXT: gpu.launch_func async [%[[S]]] @kernels::@scale
  // CHECK-NEXT: memref.cast
  // CHECK-NEXT: call @lora_all_reduce_start_f32
  // CHECK-NEXT: gpu.wait [%[[S]]]
  // CHECK-NEXT: call @report
  // CHECK-NEXT: gpu.launch_func async [%[[S]]] @kernels::@scale
  // CHECK-NEXT: gpu.wait [%[[S]]]
  // CHECK-NEXT: return
  func.func @step(%dev: memref<64xf32>, %lr: memref<f32>, %out: memref<f32>, %m: memref<8x8xf32>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c4 = arith.constant 4 : index
    %c64 = arith.constant 64 : index
    %c0_i32 = arith.constant 0 : i32
    %rate = memref.load %lr[] : memref<f32>
    gpu.launch_func @kernels::@scale blocks in (%c1, %c1, %c1) threads in (%c64, %c1, %c1) args(%dev : memref<64xf32>)
    gpu.launch_func @kernels::@scale blocks in (%c1, %c1, %c1) threads in (%c64, %c1, %c1) args(%dev : memref<64xf32>)
    %mc = memref.cast %m : memref<8x8xf32> to memref<?x?xf32, strided<[?, ?], offset: ?>>
    call @lora_gpu_sgemm_f32(%c0_i32, %c0_i32, %c0_i32, %mc, %mc, %mc) : (i32, i32, i32, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>) -> ()
    %tmp = memref.alloc() : memref<4xf32>
    %tmpu = memref.cast %tmp : memref<4xf32> to memref<*xf32>
    call @lora_gpu_free_32(%tmpu) : (memref<*xf32>) -> ()
    scf.for %i = %c0 to %c64 step %c1 {
      %v = memref.load %dev[%i] : memref<64xf32>
      %s = memref.load %out[] : memref<f32>
      %t = arith.addf %s, %v : f32
      %u = arith.mulf %t, %rate : f32
      memref.store %u, %out[] : memref<f32>
    }
    scf.for %i = %c0 to %c4 step %c1 {
      gpu.launch_func @kernels::@scale blocks in (%c1, %c1, %c1) threads in (%c64, %c1, %c1) args(%dev : memref<64xf32>)
      %v = memref.load %dev[%i] : memref<64xf32>
      memref.store %v, %out[] : memref<f32>
    }
    gpu.launch_func @kernels::@scale blocks in (%c1, %c1, %c1) threads in (%c64, %c1, %c1) args(%dev : memref<64xf32>)
    %devu = memref.cast %dev : memref<64xf32> to memref<*xf32>
    call @lora_all_reduce_start_f32(%devu) : (memref<*xf32>) -> ()
    call @report(%devu) : (memref<*xf32>) -> ()
    gpu.launch_func @kernels::@scale blocks in (%c1, %c1, %c1) threads in (%c64, %c1, %c1) args(%dev : memref<64xf32>)
    return
  }
}

// -----

// A function without kernels is left alone.
// CHECK-LABEL: func.func @host_only
// CHECK-NOT: gpu.wait
func.func @host_only(%x: memref<f32>) {
  %v = memref.load %x[] : memref<f32>
  memref.store %v, %x[] : memref<f32>
  return
}
