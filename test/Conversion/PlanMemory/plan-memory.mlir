// lora-plan-memory: static buffers become views of one arena, placed by
// liveness; the arena's size goes on the module.
// RUN: lora-opt %s -split-input-file -allow-unregistered-dialect -lora-plan-memory | FileCheck %s

// %a (4 KiB) and %b (4 KiB) are live together; %c (8 KiB) starts after
// both died, so it reuses their bytes: the arena is 8 KiB, not 16.
// CHECK: module attributes {lora.planned_arena_bytes = 8192 : i64}
// CHECK-LABEL: func.func @reuse
// CHECK-DAG: %[[ARENA:.+]] = memref.alloc() {alignment = 64 : i64} : memref<8192xi8>
// CHECK-DAG: %[[C0:.+]] = arith.constant 0 : index
// CHECK-DAG: %[[C4K:.+]] = arith.constant 4096 : index
// CHECK: %[[A:.+]] = memref.view %[[ARENA]][%[[C0]]][] : memref<8192xi8> to memref<1024xf32>
// CHECK: %[[B:.+]] = memref.view %[[ARENA]][%[[C4K]]][] : memref<8192xi8> to memref<1024xf32>
// CHECK: %[[C:.+]] = memref.view %[[ARENA]][%[[C0]]][] : memref<8192xi8> to memref<2048xf32>
// CHECK-NOT: memref.dealloc %[[A]]
// CHECK: memref.dealloc %[[ARENA]]
// CHECK-NEXT: return
func.func @reuse(%out: memref<2048xf32>) {
  %a = memref.alloc() : memref<1024xf32>
  %b = memref.alloc() : memref<1024xf32>
  "test.use"(%a, %b) : (memref<1024xf32>, memref<1024xf32>) -> ()
  memref.dealloc %a : memref<1024xf32>
  memref.dealloc %b : memref<1024xf32>
  %c = memref.alloc() : memref<2048xf32>
  memref.copy %c, %out : memref<2048xf32> to memref<2048xf32>
  memref.dealloc %c : memref<2048xf32>
  return
}

// -----

// A loop body's temporary is freed in its iteration: one offset serves all
// iterations, disjoint from the buffer live across the loop. A buffer with
// a dynamic size keeps its own allocation.
// CHECK: module attributes {lora.planned_arena_bytes = 1024 : i64}
// CHECK-LABEL: func.func @loop
// CHECK: memref.alloc() {alignment = 64 : i64} : memref<1024xi8>
// CHECK: memref.view {{.+}} to memref<128xf32>
// CHECK: scf.for
// CHECK: memref.view {{.+}} to memref<128xf32>
// CHECK: memref.alloc(%{{.+}}) : memref<?xf32>
func.func @loop(%n: index) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %live = memref.alloc() : memref<128xf32>
  scf.for %i = %c0 to %c4 step %c1 {
    %t = memref.alloc() : memref<128xf32>
    "test.use"(%t, %live) : (memref<128xf32>, memref<128xf32>) -> ()
    memref.dealloc %t : memref<128xf32>
  }
  %d = memref.alloc(%n) : memref<?xf32>
  "test.use"(%d) : (memref<?xf32>) -> ()
  memref.dealloc %d : memref<?xf32>
  memref.dealloc %live : memref<128xf32>
  return
}
