//===- Status.h - error reporting of the runtime ----------------*- C++ -*-===//
//
// Library code never exits or throws: it returns a Status whose message
// names the file, tensor or flag at fault.
//
//===----------------------------------------------------------------------===//

#ifndef LORA_RUNTIME_STATUS_H
#define LORA_RUNTIME_STATUS_H

#include <string>
#include <utility>

namespace lora::runtime {

/// Success, or an error with a message meant for the user.
class [[nodiscard]] Status {
public:
  /// The success value.
  static Status success() { return Status(); }
  /// An error with a message that names what is at fault.
  static Status error(std::string message) {
    Status status;
    status.failed = true;
    status.text = std::move(message);
    return status;
  }

  bool ok() const { return !failed; }
  explicit operator bool() const { return ok(); }
  /// The message; empty on success.
  const std::string &message() const { return text; }

private:
  Status() = default;
  bool failed = false;
  std::string text;
};

} // namespace lora::runtime

/// Returns from the enclosing function when `expr` yields an error Status.
#define LORA_RETURN_IF_ERROR(expr)                                             \
  do {                                                                         \
    ::lora::runtime::Status loraStatus_ = (expr);                              \
    if (!loraStatus_.ok())                                                     \
      return loraStatus_;                                                      \
  } while (false)

#endif // LORA_RUNTIME_STATUS_H
