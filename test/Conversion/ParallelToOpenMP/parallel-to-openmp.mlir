// lora-parallel-to-openmp: an outermost one-dimensional scf.parallel
// without reductions becomes an omp.parallel in which each thread loops
// over its own contiguous share of the iterations; anything else is left
// for convert-scf-to-openmp.
// RUN: lora-opt %s -split-input-file -lora-parallel-to-openmp | FileCheck %s

// CHECK-DAG: func.func private @omp_get_thread_num() -> i32
// CHECK-DAG: func.func private @omp_get_num_threads() -> i32
// CHECK-LABEL: func.func @rows
// CHECK-SAME: (%[[A:.+]]: memref<100x8xf32>)
// CHECK-DAG: %[[C0:.+]] = arith.constant 0 : index
// CHECK-DAG: %[[C100:.+]] = arith.constant 100 : index
// CHECK-DAG: %[[C3:.+]] = arith.constant 3 : index
// CHECK: omp.parallel {
// CHECK: %[[T32:.+]] = func.call @omp_get_thread_num() : () -> i32
// CHECK: %[[T:.+]] = arith.index_cast %[[T32]] : i32 to index
// CHECK: %[[N32:.+]] = func.call @omp_get_num_threads() : () -> i32
// CHECK: %[[N:.+]] = arith.index_cast %[[N32]] : i32 to index
// CHECK: %[[EXTENT:.+]] = arith.subi %[[C100]], %[[C0]] : index
// CHECK: %[[TRIPS:.+]] = arith.ceildivsi %[[EXTENT]], %[[C3]] : index
// CHECK: %[[SHARE:.+]] = arith.ceildivsi %[[TRIPS]], %[[N]] : index
// CHECK: %[[SPAN:.+]] = arith.muli %[[SHARE]], %[[C3]] : index
// CHECK: %[[OFFSET:.+]] = arith.muli %[[T]], %[[SPAN]] : index
// CHECK: %[[BEGIN:.+]] = arith.addi %[[C0]], %[[OFFSET]] : index
// CHECK: %[[LIMIT:.+]] = arith.addi %[[BEGIN]], %[[SPAN]] : index
// CHECK: %[[END:.+]] = arith.minsi %[[C100]], %[[LIMIT]] : index
// CHECK: scf.for %[[I:.+]] = %[[BEGIN]] to %[[END]] step %[[C3]] {
// CHECK: memref.store %{{.+}}, %[[A]][%[[I]], %{{.+}}]
// CHECK: omp.terminator
// CHECK-NOT: scf.parallel
func.func @rows(%a: memref<100x8xf32>) {
  %c0 = arith.constant 0 : index
  %c3 = arith.constant 3 : index
  %c100 = arith.constant 100 : index
  %one = arith.constant 1.0 : f32
  scf.parallel (%i) = (%c0) to (%c100) step (%c3) {
    memref.store %one, %a[%i, %c0] : memref<100x8xf32>
    scf.reduce
  }
  return
}

// -----

// Left alone: reductions, two dimensions, and a loop inside one that
// becomes an omp.parallel (nested parallelism runs on one thread anyway).
// CHECK-LABEL: func.func @mixed
// CHECK: scf.parallel (%{{.+}}) = {{.+}} init
// CHECK: scf.parallel (%{{.+}}, %{{.+}}) =
// CHECK: scf.for
// CHECK: scf.parallel (%{{.+}}) = {{.+}} init
// CHECK: omp.parallel {
// CHECK: scf.for
// CHECK: scf.parallel (%{{.+}}) =
// CHECK: omp.terminator
// CHECK-NOT: omp.parallel
func.func @mixed(%a: memref<8x8xf32>) -> f32 {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  %zero = arith.constant 0.0 : f32
  %sum = scf.parallel (%i) = (%c0) to (%c8) step (%c1) init (%zero) -> f32 {
    %v = memref.load %a[%i, %c0] : memref<8x8xf32>
    scf.reduce(%v : f32) {
    ^bb0(%x: f32, %y: f32):
      %s = arith.addf %x, %y : f32
      scf.reduce.return %s : f32
    }
  }
  scf.parallel (%i, %j) = (%c0, %c0) to (%c8, %c8) step (%c1, %c1) {
    memref.store %zero, %a[%i, %j] : memref<8x8xf32>
    scf.reduce
  }
  scf.for %k = %c0 to %c8 step %c1 {
    %s = scf.parallel (%i) = (%c0) to (%c8) step (%c1) init (%zero) -> f32 {
      %v = memref.load %a[%i, %k] : memref<8x8xf32>
      scf.reduce(%v : f32) {
      ^bb0(%x: f32, %y: f32):
        %t = arith.addf %x, %y : f32
        scf.reduce.return %t : f32
      }
    }
    scf.parallel (%i) = (%c0) to (%c8) step (%c1) {
      scf.parallel (%j) = (%c0) to (%c8) step (%c1) {
        memref.store %s, %a[%i, %j] : memref<8x8xf32>
        scf.reduce
      }
      scf.reduce
    }
  }
  return %sum : f32
}
