// lora-approximate-math: vector exp, sin and cos become polynomials (no libm
// call per lane); scalars stay for libm.
// RUN: lora-opt %s -lora-approximate-math | FileCheck %s

// CHECK-LABEL: func.func @vectors
// CHECK-NOT: math.exp
// CHECK-NOT: math.sin
// CHECK-NOT: math.cos
// CHECK: math.fma {{.*}} : vector<8xf32>
// CHECK: return
func.func @vectors(%v: vector<8xf32>) -> (vector<8xf32>, vector<8xf32>, vector<8xf32>) {
  %e = math.exp %v : vector<8xf32>
  %s = math.sin %v : vector<8xf32>
  %c = math.cos %v : vector<8xf32>
  return %e, %s, %c : vector<8xf32>, vector<8xf32>, vector<8xf32>
}

// CHECK-LABEL: func.func @scalars
// CHECK: math.exp %{{.*}} : f32
// CHECK: math.sin %{{.*}} : f32
func.func @scalars(%x: f32) -> (f32, f32) {
  %e = math.exp %x : f32
  %s = math.sin %x : f32
  return %e, %s : f32, f32
}
