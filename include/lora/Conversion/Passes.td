//===- Passes.td - lora conversion passes ------------------*- tablegen -*-===//

#ifndef LORA_CONVERSION_PASSES_TD
#define LORA_CONVERSION_PASSES_TD

include "mlir/Pass/PassBase.td"

def ConvertLoraToLinalg : Pass<"convert-lora-to-linalg", "ModuleOp"> {
  let summary = "Lower lora ops to linalg, tensor, arith and math on tensors";
  let description = [{
    Every lora op, forward, backward and AdamW, becomes linalg on tensors.
    GEMMs (linear layers and their gradients) become `linalg.matmul` with
    transposes in their indexing maps, which `lora-matmul-to-blas` turns
    into calls to the runtime's BLAS after bufferization; everything else
    becomes `linalg.generic`. Attention materializes the [seq, seq] score
    matrix per head (the CPU path); its four contractions are one
    `linalg.matmul` per head on strided 2-D slices inside `scf.for` loops,
    so that they reach BLAS too without copying heads. Only f32 tensors are
    lowered for now.

    With `flash-attention=cpu` or `gpu`, `lora.attention` and
    `lora.attention_grad` stay, marked `lora.flash`, and bufferize into
    calls to the runtime's flash attention (`lora_attention_f32`, or
    `lora_gpu_attention_f32` on device buffers): an online softmax row by
    row, the [seq, seq] matrix never stored. `gpu-bf16` calls
    `lora_gpu_attention_bf16` instead: the same on device buffers, with
    the products on bf16 tensor cores.

    With `adapter-grad-calls`, f32 `lora.adapter_grad` ops stay, marked
    `lora.runtime_call`, and bufferize into calls to
    `lora_adapter_grad_f32` (dU, dB and dA in one pass over dY and X);
    without it they become their three GEMMs.
  }];
  let options = [
    Option<"flashAttention", "flash-attention", "std::string", "\"none\"",
           "none (score blocks per head), cpu, gpu or gpu-bf16 (runtime "
           "flash attention; gpu-bf16 on tensor cores)">,
    Option<"adapterGradCalls", "adapter-grad-calls", "bool", "false",
           "leave f32 lora.adapter_grad to the runtime's one-pass kernel "
           "(CPU) instead of lowering it to three GEMMs">
  ];
  let dependentDialects = [
    "::mlir::arith::ArithDialect", "::mlir::linalg::LinalgDialect",
    "::mlir::math::MathDialect", "::mlir::scf::SCFDialect",
    "::mlir::tensor::TensorDialect",
    "::mlir::bufferization::BufferizationDialect"
  ];
}

def MatmulToBlas : Pass<"lora-matmul-to-blas", "ModuleOp"> {
  let summary = "Run linalg.matmul on memrefs through the runtime's BLAS";
  let description = [{
    After bufferization, every `linalg.matmul` on f32 memrefs whose rows
    are contiguous and whose indexing maps are a plain or transposed GEMM
    (C += op(A)·op(B)) becomes a call to `lora_sgemm_f32`, which the runtime
    implements with OpenBLAS (`runtime/include/lora/runtime/Gemm.h`). A
    `linalg.fill` of 0.0 into C just before the GEMM (only views, casts or
    constants between them) is folded into the call: its `accumulate` flag
    is 0 and BLAS overwrites C (beta = 0) instead of adding to zeros it
    reads back. Other matmuls stay and are lowered to loops. The GPU
    pipeline names `lora_gpu_sgemm_f32` instead (cuBLASLt on device
    buffers).

    A GEMM whose A and B are both bf16 (under `lora-run --bf16`,
    `lora-bf16-gemm-inputs` gives every GEMM bf16 inputs, on tensors) goes
    to `bf16-callee` instead: bf16 inputs, fp32 accumulation into the f32
    C, as tensor cores and torch.autocast do. One f32 and one bf16 input
    are left to the loops.
  }];
  let options = [
    Option<"callee", "callee", "std::string", "\"lora_sgemm_f32\"",
           "The runtime GEMM to call">,
    Option<"bf16Callee", "bf16-callee", "std::string",
           "\"lora_gemm_bf16\"", "The runtime GEMM with bf16 inputs">
  ];
  let dependentDialects = [
    "::mlir::arith::ArithDialect", "::mlir::func::FuncDialect",
    "::mlir::memref::MemRefDialect"
  ];
}

def StoreFrozenBf16 : Pass<"lora-store-frozen-bf16", "ModuleOp"> {
  let summary = "Store frozen parameters in bf16; trainable ones stay fp32";
  let description = [{
    Mixed precision as the issue for the GPU backend asks for it: bf16
    compute with fp32 master weights and optimizer state for the
    trainable parameters only. Every f32 tensor argument of a function
    whose `lora.role` is `frozen` becomes a bf16 tensor of the same shape
    and its uses read `arith.extf` of it, so the step computes what it
    computed before on weights rounded once, when the runtime stored them
    (round to nearest even). Trainable parameters (`lora`, `full`), their
    moments and everything else keep their types. Frozen weights then take
    half the memory they took in f32.

    `lora-bf16-gemm-inputs` then reads them in bf16 where they feed a
    GEMM, so nothing widens them but the kernels that need f32 (RMSNorm's
    weights, the embedding rows a step gathers).

    ```mlir
    func.func @step(%w: tensor<32x32xf32> {lora.role = #lora.role<frozen>}, ...)
    // becomes
    func.func @step(%w: tensor<32x32xbf16> {lora.role = #lora.role<frozen>}, ...) {
      %0 = arith.extf %w : tensor<32x32xbf16> to tensor<32x32xf32>
    ```
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect"];
}

def Bf16GemmInputs : Pass<"lora-bf16-gemm-inputs", "ModuleOp"> {
  let summary = "Give every GEMM bf16 inputs on tensors, from bf16 weights "
                "without widening them";
  let description = [{
    After `convert-lora-to-linalg`, on tensors: each `linalg.matmul` with
    f32 inputs gets bf16 inputs (fp32 accumulation into its f32 output, as
    tensor cores and torch.autocast do), so that `lora-matmul-to-blas`
    calls the bf16 GEMM on them as they are. An input is
    - `arith.extf` of a bf16 tensor (a frozen weight under
      `lora-store-frozen-bf16`): that tensor;
    - a `tensor.concat` (lora-fuse-adapters' [W; A]): the concatenation of
      its parts' bf16 forms, made where the GEMM runs, so no f32 copy of
      the weight exists and each GEMM's concatenation lives only while it
      runs;
    - anything else: `arith.truncf` of it, which `lora-fuse-elementwise`
      merges into the kernel that produces it where that kernel has no
      other reader.
    Before that, `arith.extf` of a tensor is moved below the
    `tensor.extract` and `tensor.extract_slice` ops that read it (the
    embedding's gathered rows, the fused loss's vocabulary chunks), so
    that they read the bf16 tensor and widen only what they take.
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::linalg::LinalgDialect",
                           "::mlir::tensor::TensorDialect"];
}

def TileForGpu : Pass<"lora-tile-for-gpu"> {
  let summary = "Tile outermost scf.parallel loops into blocks of threads "
                "and map them onto the grid";
  let description = [{
    Every scf.parallel that no other scf.parallel encloses is tiled so that
    its innermost dimension (the contiguous one of row-major buffers, so
    that neighbouring threads touch neighbouring elements) runs `threads`
    iterations per tile and the others one; the tiles have constant bounds
    and an in-bounds check. An innermost trip count below `threads` gives a
    block of that count rounded up to a warp.

    The pass also sets the `mapping` that `convert-parallel-loops-to-gpu`
    turns into a launch, within the hardware's limits: the tile's
    innermost dimension on threadIdx.x (at most 1024; threadIdx.z holds
    only 64), the dimension with the most blocks on blockIdx.x (at most
    2^31 - 1), the next two of at most 65535 blocks on y and z, the rest
    and every loop nested deeper sequential.
  }];
  let options = [
    Option<"threads", "threads", "int64_t", "256", "Threads per block">
  ];
  let dependentDialects = [
    "::mlir::scf::SCFDialect", "::mlir::affine::AffineDialect",
    "::mlir::arith::ArithDialect", "::mlir::gpu::GPUDialect"
  ];
}

def HostSharedAllocs : Pass<"lora-host-shared-allocs", "ModuleOp"> {
  let summary = "Allocate the host code's buffers in memory the GPU reads";
  let description = [{
    After kernel outlining, the host functions' `memref.alloc` (the planned
    arena, buffers of loops that stayed on the host) become
    `gpu.alloc host_shared` (CUDA managed memory, which both the kernels and
    the host code can read and write) and their `memref.dealloc` a call to
    the runtime's `lora_gpu_free_<bits>`. Constants (`memref.get_global`)
    live in the host program's memory, which kernels cannot read: each host
    function copies those it uses into such a buffer, freed on return.
  }];
  let dependentDialects = ["::mlir::gpu::GPUDialect",
                           "::mlir::func::FuncDialect"];
}

def AsyncLaunches : Pass<"lora-async-launches", "ModuleOp"> {
  let summary = "Launch kernels asynchronously on one stream; wait only where the host needs the GPU's results";
  let description = [{
    A synchronous `gpu.launch_func` lowers to a launch and a wait of the
    host for the GPU: a step waited thousands of times. After kernel
    outlining, this pass makes every launch of a host function `async` on
    one stream (`gpu.wait async` at the function's start, which lowers to
    the runtime's `mgpuStreamCreate`: the calling thread's stream). The
    runtime's `lora_gpu_*` entry points other than the frees (GEMMs, flash
    attention) enqueue their work on that stream too, so all of it runs in
    program order. The host waits (`gpu.wait`) only:

    - before an operation of its own that reads or writes a buffer some
      kernel or stream call of the function uses (through any view), or
      whose effects are unknown;
    - before a call to any other function; not before the data-parallel
      all-reduce (`lora_all_reduce_*`), which waits for the stream itself
      when it communicates, so a single process does not wait once per
      gradient;
    - before `func.return`, so the step's results are complete.

    A loop or branch whose body touches such buffers on the host and
    launches nothing gets one wait before it; one that launches waits
    inside, where its body touches them.
  }];
  let dependentDialects = ["::mlir::gpu::GPUDialect"];
}

def ApproximateMath : Pass<"lora-approximate-math"> {
  let summary = "Replace f32 vector exp, sin and cos by polynomial approximations";
  let description = [{
    Runs after vectorization: `math.exp`, `math.sin` and `math.cos` on f32
    vectors become upstream MLIR's polynomial approximations (arith,
    math.fma and bit operations), so that a vector of 8 lanes is computed in
    registers instead of by 8 calls to libm. Scalars are left to libm,
    which is faster for them. The
    approximations are within a few ulp of libm; the compiled-step tests
    compare the result against the double-precision reference evaluator.
  }];
  let dependentDialects = [
    "::mlir::arith::ArithDialect", "::mlir::math::MathDialect",
    "::mlir::vector::VectorDialect"
  ];
}

def LowerRowReductions : Pass<"lora-lower-row-reductions"> {
  let summary = "Lower last-dim linalg reductions on buffers to register-carried affine loops";
  let description = [{
    `convert-linalg-to-affine-loops` keeps a reduction's accumulator in
    memory (a load and a store per element), which the super-vectorizer
    does not vectorize. For a `linalg.generic` on buffers whose last loop is
    its only reduction and whose output drops that loop (row sums, row
    maxima, dot products), this pass emits the parallel loops, then an
    innermost `affine.for` whose `iter_args` carry the accumulator, and one
    store per row: the form `affine-super-vectorize{vectorize-reductions}`
    turns into vector reductions.
  }];
  let dependentDialects = ["::mlir::affine::AffineDialect"];
}

def ContiguousAccesses : Pass<"lora-contiguous-accesses"> {
  let summary = "Access static strided views as windows of identity-layout arrays";
  let description = [{
    `affine-super-vectorize` vectorizes loads and stores of memrefs with
    the identity layout only, so a kernel reading or writing a column slice
    of a wider buffer (a fused adapter GEMM's `[Y | U]` output, a slice of
    `[dY | dU]`) stayed scalar, or needed a copy first. A view with static
    strides, unit innermost stride and strides that divide one another is
    a window of a row-major array: this pass reinterprets the view's buffer
    as that array (`memref.reinterpret_cast`, once per view) and shifts
    every `affine.load` and `affine.store` index by the window's origin.

    A window whose innermost size is not a multiple of `vector-multiple`
    (the vectorizer's width) and does not reach the end of its rows is left
    alone: the vectorizer's last vector may pass a loop's end, which is
    harmless only where the memref's bound stops it at the same place.
  }];
  let options = [
    Option<"vectorMultiple", "vector-multiple", "int64_t", "8",
           "Innermost window sizes the vectorizer covers exactly">
  ];
  let dependentDialects = [
    "::mlir::affine::AffineDialect", "::mlir::memref::MemRefDialect"
  ];
}

def CopiesToLoops : Pass<"lora-copies-to-loops"> {
  let summary = "Turn large memref.copy ops into linalg.copy kernels";
  let description = [{
    `memref.copy` lowers to a memcpy, or to a generic strided copy, on the
    calling thread. The step's large copies (a frozen weight into `[W; A]`,
    a gradient into `[dY | dU]`, a slice into a contiguous buffer) become
    `linalg.copy` instead, a kernel like the others: lowered to loops,
    vectorized (`lora-contiguous-accesses` handles the strided sides) and
    split across the OpenMP threads. Copies of fewer than `min-elements`
    elements stay memcpys. The GPU lowering makes every copy a kernel
    (`min-elements=1`): a copy left to the host code would move managed
    buffers between GPU and host memory.
  }];
  let options = [
    Option<"minElements", "min-elements", "int64_t", "16384",
           "Smallest copy (in elements) made a kernel">
  ];
  let dependentDialects = ["::mlir::linalg::LinalgDialect"];
}

def SerializeSmallLoops : Pass<"lora-serialize-small-loops", "ModuleOp"> {
  let summary = "Run parallel loop nests with little work on one thread";
  let description = [{
    After `affine-parallelize` and the vectorizer: a one-dimensional
    `affine.parallel` without reductions whose nest runs fewer than
    `min-iterations` innermost iterations in all (every trip count
    constant; an iteration of a vectorized loop is a vector) becomes an
    `affine.for` again. Entering an OpenMP region and meeting at its end
    costs a few microseconds, more than a kernel of a few thousand elements
    takes on one thread; the benchmark's LoRA step had 516 regions, 332
    after this pass (each adapter's AdamW update, its share of the
    gradient norm, the scaling of U run on one thread now).
  }];
  let options = [
    Option<"minIterations", "min-iterations", "int64_t", /*default=*/"2048",
           "Innermost iterations (vectors where vectorized) from which a "
           "loop nest stays parallel">
  ];
  let dependentDialects = ["::mlir::affine::AffineDialect"];
}

def ParallelToOpenMP : Pass<"lora-parallel-to-openmp", "ModuleOp"> {
  let summary = "Split one-dimensional scf.parallel loops across OpenMP threads by hand";
  let description = [{
    `convert-scf-to-openmp` turns each `scf.parallel` into an
    `omp.parallel` around an `omp.wsloop`, which libomp runs through
    `__kmpc_for_static_init`/`fini` and a barrier on every entry (and
    Debian's libomp formats a trace string in each static init). A step
    enters thousands of small parallel loops (each kernel of attention's
    per-head loop), so this pass lowers an outermost one-dimensional
    `scf.parallel` without reductions to an `omp.parallel` in which each
    thread runs an `scf.for` over its own contiguous share of the
    iterations (`omp_get_thread_num`, `omp_get_num_threads`); the region's
    end is the only synchronization. Other parallel loops are left for
    `convert-scf-to-openmp`.
  }];
  let dependentDialects = [
    "::mlir::arith::ArithDialect", "::mlir::func::FuncDialect",
    "::mlir::omp::OpenMPDialect", "::mlir::scf::SCFDialect"
  ];
}

def PlanMemory : Pass<"lora-plan-memory", "ModuleOp"> {
  let summary = "Place a step's temporary buffers in one static arena by liveness";
  let description = [{
    After bufferization, numbers each function's ops in execution order,
    takes every static `memref.alloc`'s live interval (alloc to its last
    dealloc, in the same block) and packs the buffers into one arena:
    largest first, each at the lowest offset that no buffer live at the
    same time overlaps. The allocs become `memref.view`s of the arena,
    which is allocated once per call; the deallocs disappear. Loop-local
    buffers reuse their offsets in every iteration. The arena's size, the
    step's planned activation memory, is recorded on the module as
    `lora.planned_arena_bytes`; `lora-run` prints it (with parameters,
    optimizer state and outputs) before training.
  }];
  let dependentDialects = ["::mlir::memref::MemRefDialect",
                           "::mlir::arith::ArithDialect"];
}

def InPlaceUpdates : Pass<"lora-in-place-updates", "ModuleOp"> {
  let summary = "Update a view where it lies instead of in a copy of it";
  let description = [{
    After bufferization, before `lora-plan-memory`: a buffer that is
    written first by a copy of a view into another buffer (the fused
    adapter forward's Y, a copy of Y0's columns of [Y0 | U] that the
    rank-r GEMM then accumulates into) is replaced by that view when
    nothing else reads or writes the view's columns of the other buffer
    after the copy (column ranges are followed through subviews and
    reshapes that keep the last dimension) and every user of the buffer
    takes a strided layout (linalg ops, copies, reshapes and subviews
    whose types can be recomputed). The copy and the buffer go; the
    planner's liveness keeps the other buffer alive for as long as the
    view is used.

    The other direction too: a buffer of its own (possibly reshaped) that
    is copied whole into a view of another buffer (dY into its columns of
    the backward's [dY | dU]) and only read after the copy, where the
    other buffer's other uses stay out of those columns or only read them
    after the copy, is replaced by the view: its producers write there
    and its readers read there. The view's chain moves up to dominate the
    producers.
  }];
  let dependentDialects = ["::mlir::memref::MemRefDialect"];
}

def AdjacentArguments : Pass<"lora-adjacent-arguments", "ModuleOp"> {
  let summary = "Read a concatenation of arguments in place when they are adjacent";
  let description = [{
    After bufferization and `lora-plan-memory`: a 2-D buffer whose rows
    are filled, block after block, by copies of function arguments of the
    same width (lora-fuse-adapters' [W; A]: the frozen weight and the
    adapter's A, copied every step) and that is otherwise only read by
    linalg ops becomes an `scf.if` on the arguments' addresses: when each
    argument starts where the one before ends (the runtime lays a step's
    arguments out in order), the readers read the first argument's buffer
    reinterpreted as the whole concatenation, and no copy runs; otherwise
    the copies run as before.
  }];
  let dependentDialects = ["::mlir::memref::MemRefDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::scf::SCFDialect"];
}

def FuseElementwise : Pass<"lora-fuse-elementwise"> {
  let summary = "Merge elementwise linalg kernels into their consumers without repeating work";
  let description = [{
    Runs on the linalg form of a step (after `convert-lora-to-linalg`).
    RMSNorm, RoPE, SwiGLU, residual adds, the adapter's scaling and their
    backward lower to separate `linalg.generic` kernels, each a pass over
    [tokens, features] memory. Upstream's elementwise fusion merges a
    producer into its consumer here only when no element is computed twice:
    the producer is not a reduction, has exactly one use, and the consumer
    reads it over the same iteration space (a permutation, no broadcast).
    Per-row statistics, the RoPE table and the causal mask therefore stay
    kernels of their own (fusing them would recompute them per element).
  }];
  let dependentDialects = ["::mlir::linalg::LinalgDialect"];
}

def SplitReductions : Pass<"lora-split-reductions"> {
  let summary = "Split whole-tensor sums into parallel partial sums and a short final sum";
  let description = [{
    Runs on the linalg form of a step, on tensors. A `linalg.generic` that
    reduces a whole 1-D tensor to a scalar (the loss over tokens, each
    parameter's squared-gradient sum for the gradient norm) has no
    parallel loop: on the CPU it ran on one thread, and on the GPU it
    stayed in the host code as a loop over managed memory, pulling every
    gradient from the GPU to the host and back each step. Upstream's
    `linalg::splitReduction` rewrites one of at least `min-elements`
    elements into partial sums over contiguous chunks of at least `chunk`
    elements (a loop over the partials that is parallel: OpenMP threads
    on the CPU, a kernel on the GPU) and a reduction of the partials into
    the scalar. The number of partials is the largest power of two that
    divides the size, keeps chunks of `chunk` or more and is at most
    `max-parts`; a size with no such split stays as it is. Only
    reductions whose combiner has an identity (addf, mulf, maximumf, ...)
    are split. Sums change order, so results change in the last bits.

    With `row-min-elements` above 0 (the GPU pipeline), row reductions
    too: a kernel whose last loop is its only reduction and runs over at
    least that many elements (an RMSNorm's sum of squares over the hidden
    size, the loss's maximum and sum over a vocabulary chunk) gets up to
    `max-row-parts` partials per row, the partials' dimension innermost.
    On the GPU a row then has that many threads instead of one.

    Whole-tensor sums that form a chain into one scalar (each starting
    from the one before, as the gradient norm adds up every parameter's
    sum of squares) are merged: the sums' partials are concatenated and
    one reduction adds them all up at the end. On
    the GPU that is one short host loop, and one wait for the GPU, instead
    of one per parameter.
  }];
  let options = [
    Option<"minElements", "min-elements", "int64_t", "4096",
           "smallest reduction that is split">,
    Option<"chunk", "chunk", "int64_t", "64",
           "fewest elements summed by one partial">,
    Option<"maxParts", "max-parts", "int64_t", "4096",
           "most partial sums">,
    Option<"rowMinElements", "row-min-elements", "int64_t", "0",
           "shortest row reduction that is split (0: none)">,
    Option<"maxRowParts", "max-row-parts", "int64_t", "32",
           "most partial sums per row">
  ];
  let dependentDialects = ["::mlir::linalg::LinalgDialect",
                           "::mlir::tensor::TensorDialect",
                           "::mlir::arith::ArithDialect"];
}

#endif // LORA_CONVERSION_PASSES_TD
