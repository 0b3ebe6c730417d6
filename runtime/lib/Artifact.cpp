//===- Artifact.cpp - load an ahead-of-time compiled step -----------------===//

#include "lora/runtime/Artifact.h"

#include "lora/runtime/Cuda.h"
#include "lora/runtime/EntryPoints.h"
#include "lora/runtime/MemRef.h"

#include <nlohmann/json.hpp>

#include <dlfcn.h>
#include <fstream>

namespace lora::runtime {

namespace {

Status parseBuffers(const std::string &manifest, const nlohmann::json &list,
                    const char *key, std::vector<BufferInfo> &out) {
  if (!list.is_array())
    return Status::error(manifest + ": '" + key + "' is not a list");
  for (const nlohmann::json &entry : list) {
    if (!entry.is_object() || !entry["name"].is_string() ||
        !entry["shape"].is_array() || !entry["dtype"].is_string() ||
        !entry["role"].is_string())
      return Status::error(manifest + ": an entry of '" + key +
                           "' lacks name, shape, dtype or role");
    BufferInfo info;
    info.name = entry["name"].get<std::string>();
    info.role = entry["role"].get<std::string>();
    for (const nlohmann::json &dim : entry["shape"]) {
      if (!dim.is_number_unsigned())
        return Status::error(manifest + ": buffer '" + info.name +
                             "' has a bad shape");
      info.shape.push_back(dim.get<int64_t>());
    }
    std::optional<DType> dtype = parseDType(entry["dtype"].get<std::string>());
    if (!dtype)
      return Status::error(manifest + ": buffer '" + info.name +
                           "' has an unknown dtype");
    info.dtype = *dtype;
    out.push_back(std::move(info));
  }
  return Status::success();
}

} // namespace

Status ArtifactStep::open(const std::string &directory,
                          std::unique_ptr<ArtifactStep> &result) {
  std::string manifestPath = directory + "/manifest.json";
  std::ifstream in(manifestPath);
  if (!in)
    return Status::error(manifestPath + ": cannot open (not an artifact of "
                                        "lora-run compile?)");
  nlohmann::json manifest = nlohmann::json::parse(in, nullptr, false);
  if (manifest.is_discarded() || !manifest.is_object() ||
      manifest.value("format", "") != "lora-mlir-cpu-step")
    return Status::error(manifestPath + ": not a lora-mlir CPU step manifest");
  if (manifest.value("version", 0) != 1)
    return Status::error(manifestPath + ": unsupported version");
  std::unique_ptr<ArtifactStep> step(new ArtifactStep());
  step->path = directory;
  LORA_RETURN_IF_ERROR(parseBuffers(manifestPath, manifest["arguments"],
                                    "arguments", step->args));
  LORA_RETURN_IF_ERROR(
      parseBuffers(manifestPath, manifest["results"], "results", step->outs));
  step->arenaBytes = manifest.value("planned_arena_bytes", uint64_t(0));
  step->reduces = manifest.value("reduces_gradients", false);
  std::string device = manifest.value("device", std::string("cpu"));
  if (device != "cpu" && device != "cuda")
    return Status::error(manifestPath + ": unknown device '" + device + "'");
  step->gpu = device == "cuda";
  // A CUDA step loads its kernels when step.so is opened: the GPU must be
  // there first.
  if (step->gpu) {
    std::string name;
    if (Status status = cudaDevice(name); !status.ok())
      return Status::error(directory + " is a CUDA step, but " +
                           status.message());
  }
  step->metadataText =
      manifest.value("metadata", nlohmann::json::object()).dump();
  // step.so calls the runtime (and a CUDA step its CUDA backend); the
  // loading program must export those functions.
  std::vector<RuntimeEntryPoint> needed = cpuEntryPoints();
  if (step->gpu)
    for (const RuntimeEntryPoint &entry : cudaEntryPoints())
      needed.push_back(entry);
  for (const RuntimeEntryPoint &entry : needed)
    if (!dlsym(RTLD_DEFAULT, entry.name))
      return Status::error(std::string("this program does not export '") +
                           entry.name +
                           "', which step.so calls; link it with -rdynamic "
                           "(ENABLE_EXPORTS)");
  std::string library =
      directory + "/" + manifest.value("library", std::string("step.so"));
  step->library = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!step->library)
    return Status::error(library + ": cannot load: " + dlerror());
  std::string entry = manifest.value("entry", std::string("lora_step_packed"));
  step->entry =
      reinterpret_cast<void (*)(void **)>(dlsym(step->library, entry.c_str()));
  if (!step->entry)
    return Status::error(library + ": no symbol '" + entry + "'");
  result = std::move(step);
  return Status::success();
}

ArtifactStep::~ArtifactStep() {
  if (library)
    dlclose(library);
}

Status ArtifactStep::run(const std::vector<void *> &arguments,
                         const std::vector<void *> &results) {
  if (arguments.size() != args.size() || results.size() != outs.size())
    return Status::error(path + ": the step takes " +
                         std::to_string(args.size()) + " arguments and " +
                         std::to_string(outs.size()) + " results");
  // Results are the trailing out-parameters.
  MemRefDescriptors descriptors;
  for (size_t i = 0; i < args.size(); ++i)
    descriptors.add(arguments[i], args[i].shape);
  for (size_t i = 0; i < outs.size(); ++i)
    descriptors.add(results[i], outs[i].shape);
  entry(descriptors.pointers().data());
  return Status::success();
}

} // namespace lora::runtime
