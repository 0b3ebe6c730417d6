//===- LoraDialect.td - the lora dialect -------------------*- tablegen -*-===//
//
// The lora dialect: transformer layers whose weights may carry low-rank
// perturbations, on builtin tensors with value semantics.
//
//===----------------------------------------------------------------------===//

#ifndef LORA_DIALECT_LORA_IR_LORADIALECT_TD
#define LORA_DIALECT_LORA_IR_LORADIALECT_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/EnumAttr.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

def Lora_Dialect : Dialect {
  let name = "lora";
  let cppNamespace = "::mlir::lora";
  let summary = "Transformer layers with low-rank adapters, and their training";
  let description = [{
    The `lora` dialect describes one training (or evaluation) step of a
    Llama-family decoder at the level a machine-learning engineer thinks in:
    embedding, RMSNorm, linear layers that may carry a low-rank adapter
    (`W + s·B·A`), rotary position embedding, causal grouped-query attention,
    SwiGLU, residual adds and the mean token cross-entropy.

    All ops have value semantics on builtin ranked tensors. Scalars that
    change from step to step (learning rate, step number, dropout seed, the
    loss) are 0-d tensors. Dimensions may be dynamic (`?`); verifiers check
    every dimension that is static on both sides.

    Backward ops are ops of this dialect (`*_grad`, `linear_grad_input`,
    `linear_grad_weight`) and so is the AdamW update: the gradient of a
    layer is one op that later passes can fuse, tile or lower as a unit, and
    the reference evaluator can check against finite differences one op at a
    time. See `docs/Rationale.md`.

    Parameters are function arguments. Their role is an argument attribute
    that passes read:

    ```mlir
    func.func @step(
        %embed: tensor<256x64xf32> {lora.role = #lora.role<frozen>,
                                    lora.name = "model.embed_tokens.weight"},
        %q_a: tensor<8x64xf32> {lora.role = #lora.role<lora>,
            lora.name = "model.layers.0.self_attn.q_proj.lora_A.weight"},
        ...)
    ```

    `frozen` parameters never get a gradient or optimizer state, `lora`
    parameters are adapter matrices, `full` parameters are trained in full.
    `lora.name` carries the Hugging Face / PEFT tensor name.
  }];
  let useDefaultAttributePrinterParser = 1;
  let hasCanonicalizer = 0;
  let extraClassDeclaration = [{
    /// Name of the argument attribute holding a parameter's role.
    static constexpr ::llvm::StringLiteral getRoleAttrName() {
      return ::llvm::StringLiteral("lora.role");
    }
    /// Name of the argument attribute holding a parameter's tensor name.
    static constexpr ::llvm::StringLiteral getParamNameAttrName() {
      return ::llvm::StringLiteral("lora.name");
    }
  }];
  let hasRegionArgAttrVerify = 1;
  let hasRegionResultAttrVerify = 1;
}

def Lora_RoleFrozen : I32EnumAttrCase<"frozen", 0>;
def Lora_RoleLora : I32EnumAttrCase<"lora", 1>;
def Lora_RoleFull : I32EnumAttrCase<"full", 2>;

def Lora_Role : I32EnumAttr<"Role", "role of a parameter in training",
    [Lora_RoleFrozen, Lora_RoleLora, Lora_RoleFull]> {
  let cppNamespace = "::mlir::lora";
  let genSpecializedAttr = 0;
}

def Lora_RoleAttr : EnumAttr<Lora_Dialect, Lora_Role, "role"> {
  let summary = "Role of a parameter: frozen, lora (adapter) or full";
  let description = [{
    Attached to a function argument as `lora.role`. `#lora.role<frozen>`:
    the parameter is read but never gets a gradient or optimizer state.
    `#lora.role<lora>`: a low-rank adapter matrix (`A` or `B`), trained.
    `#lora.role<full>`: a base weight trained in full.
  }];
  let assemblyFormat = "`<` $value `>`";
}

class Lora_Op<string mnemonic, list<Trait> traits = []>
    : Op<Lora_Dialect, mnemonic, !listconcat(traits, [Pure])> {
  let hasVerifier = 1;
}

#endif // LORA_DIALECT_LORA_IR_LORADIALECT_TD
